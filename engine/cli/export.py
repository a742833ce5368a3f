"""`engine export MODEL OUT_DIR`: options -> ExportOptions -> export_model."""
from __future__ import annotations

import click

from export import POOLING_MODES, PRECISIONS, ExportOptions
from export.options import SPLADE_POOLING

from ..extras import require_exporter
from .errors import handle_errors


@click.command()
@click.argument("model")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--pooling", type=click.Choice(POOLING_MODES + (SPLADE_POOLING,)), default=None,
              help="Default: from sentence-transformers metadata, else cls. splade: SPLADE sparse vectors from a *ForMaskedLM.")
@click.option("--normalize/--no-normalize", default=None, help="L2-normalize inside the graph. Default: from metadata, else off.")
@click.option("--max-length", type=int, default=None, help="Default: from metadata, else the model's max positions.")
@click.option("--last-k", type=int, default=4, show_default=True, help="Layers combined by the last-k-* pooling modes.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--token-embeddings/--no-token-embeddings", default=None,
              help="Also output token_embeddings (B, T, H). Default: on, except for int8 and int8-fast.")
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--atol", type=float, default=None, help="Override the max-abs parity threshold for every output.")
@click.option("--min-cos", type=float, default=None, help="Override the min-cosine parity threshold for every output.")
@click.option("--min-overlap", type=float, default=None,
              help="Override the sentence_embedding top-10 neighbour-overlap threshold (default: 0.9 int8, 0.85 int8-fast).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT_DIR.")
@click.option("--trust-remote-code", is_flag=True, help="Allow model code from the hub (off by default).")
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit).")
@click.option("--allow-large-config", is_flag=True,
              help="Build config sizes past the bounds (96 layers, hidden 16384, vocabulary 1,000,000, ...; docs/export.md).")
@handle_errors
def export(**kwargs) -> None:
    """Export MODEL (folder or hub id) to validated ONNX graphs in OUT_DIR."""
    require_exporter("engine export")
    from export import export_model  # imports torch; keep `engine --help` and `engine embed` light

    manifest = export_model(ExportOptions(**kwargs), log=lambda m: click.echo(m, err=True))
    click.echo(format_summary(manifest))


def format_summary(manifest: dict) -> str:
    """A short human summary of an export: fused ops, parity per output (the manifest's notes are logged, not here)."""
    task = manifest.get("task")
    what = (f"reranker num_labels={manifest['num_labels']} activation={manifest['activation']}" if task == "rerank" else
            f"sparse encoder SPLADE {manifest['splade']['pooling']} {manifest['splade']['activation']} vocabulary="
            f"{manifest['vocab_size']} query={manifest['query']['kind']}" if task == "sparse" else
            f"pooling={manifest['pooling']} normalize={manifest['normalize']}")
    lines = [
        f"exported {manifest['architecture']} ({manifest['layers']} layers, hidden {manifest['hidden_size']}) "
        f"{what} max_length={manifest['max_length']} precision={manifest['precision']} in {manifest['export_seconds']}s",
        f"fused ops: {manifest['fused_ops']}" + ("" if manifest["attention_fused"] else "  (attention NOT fused)"),
    ]
    for graph, report in manifest["parity"].items():
        for name, o in report["outputs"].items():
            if "pattern_mismatches" in o:  # a sparse encoder's gate
                lines.append(f"parity {graph}/{name}: max_abs={o['max_abs']:.3g} pattern_mismatches={o['pattern_mismatches']} "
                             f"min_cos={o['min_cos']:.6f} top{o['k']}_overlap={o['top_k_overlap']:.3f} "
                             f"active_dims_mean={o['active_dims'][1]:.1f} ({report['texts']} texts)")
                continue
            if "order_kept" in o:  # a cross-encoder's score gate
                lines.append(f"parity {graph}/{name}: max_abs={o['max_abs']:.3g} top{o['k']}_order_kept={o['order_kept']:.3f} "
                             f"top{o['k']}_overlap={o['top_k_overlap']:.3f} ({report['queries']} queries x "
                             f"{report['documents_per_query']} documents)")
                continue
            overlap = f" top{o['neighbours_k']}_overlap={o['neighbour_overlap']:.3f}" if "neighbour_overlap" in o else ""
            lines.append(f"parity {graph}/{name}: max_abs={o['max_abs']:.3g} min_cos={o['min_cos']:.7f} mean_cos={o['mean_cos']:.7f}{overlap}")
    if "quantization" in manifest:
        q = manifest["quantization"]
        lines.append(f"int8 recipe {q['recipe']}: reduce_range={q['reduce_range']} first-token fp32 FFN blocks={q['first_token_fp32_ffn_blocks']}")
    return "\n".join(lines)  # notes went to stderr through the log as the export finished (also on failure)
