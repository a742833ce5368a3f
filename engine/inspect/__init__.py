"""`engine inspect`: attention heatmaps (PNG, HTML), the top-attended table, raw arrays and corpus layer drift."""
from .run import InspectJob, InspectResult, run_inspect

__all__ = ["InspectJob", "InspectResult", "run_inspect"]
