"""Speed and parity benchmarks for embedding-engine."""
