"""Where a sparse export's max_active_dims is fastest: numpy in the runtime's sparse head (the graph returns (B, V))
or a TopK node appended to sparse.onnx (the graph returns (B, k) values and indices). Prints ms per batch.

python -m benchmarks.sparse_topk EXPORT_FOLDER [--batch 32] [--k 64] [--repeats 20]"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def with_topk(graph: Path, out: Path) -> Path:
    """sparse.onnx plus a TopK over the vocabulary axis: outputs topk_values, topk_indices (B, k); input k (1,) int64."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(graph))
    g = model.graph
    g.input.append(helper.make_tensor_value_info("k", TensorProto.INT64, [1]))
    g.node.append(helper.make_node("TopK", ["sparse_embedding", "k"], ["topk_values", "topk_indices"], axis=-1, largest=1, sorted=0))
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("topk_values", TensorProto.FLOAT, ["batch", "k"]),
                     helper.make_tensor_value_info("topk_indices", TensorProto.INT64, ["batch", "k"])])
    onnx.save(model, str(out))
    return out


def main() -> None:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from benchmarks.corpus import pydoc_paragraphs
    from engine.runtime.heads import sparse_row

    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()
    folder = Path(args.export)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(args.max_length)
    tok.enable_padding()
    enc = tok.encode_batch(pydoc_paragraphs()[: args.batch])
    feed = {"input_ids": np.array([e.ids for e in enc], np.int64), "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
            "token_type_ids": np.zeros((len(enc), len(enc[0].ids)), np.int64)}
    opts = ort.SessionOptions()
    base = ort.InferenceSession(str(folder / "sparse.onnx"), opts, providers=["CPUExecutionProvider"])
    feed = {i.name: feed[i.name] for i in base.get_inputs()}
    topk = ort.InferenceSession(str(with_topk(folder / "sparse.onnx", Path("/tmp") / "sparse_topk.onnx")), opts,
                                providers=["CPUExecutionProvider"])

    def timed(fn):
        fn()
        t = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        return (time.perf_counter() - t) / args.repeats * 1000

    def head(k):
        out = base.run(["sparse_embedding"], feed)[0]
        return [sparse_row(r, k) for r in out]

    def graph_topk():
        vals, idx = topk.run(None, feed | {"k": np.array([args.k], np.int64)})
        rows = []
        for v, i in zip(vals, idx):
            keep = v > 0
            order = np.argsort(i[keep])
            rows.append((i[keep][order].astype(np.int32), v[keep][order]))
        return rows

    out = base.run(["sparse_embedding"], feed)[0]
    graph_only = timed(lambda: base.run(["sparse_embedding"], feed))
    post_all = timed(lambda: [sparse_row(r, None) for r in out])
    post_k = timed(lambda: [sparse_row(r, args.k) for r in out])
    print(f"batch {args.batch} x {feed['input_ids'].shape[1]} tokens, vocabulary {out.shape[1]}, "
          f"active mean {(out > 0).sum(1).mean():.0f}, k {args.k}")
    print(f"graph (B, V): {graph_only:.1f} ms; numpy head all active: {post_all:.2f} ms, top-k: {post_k:.2f} ms")
    print(f"graph + numpy head top-k: {timed(lambda: head(args.k)):.1f} ms; graph with TopK + filter: {timed(graph_topk):.1f} ms")


if __name__ == "__main__":
    main()
