"""`engine inspect TEXT...`: attention heatmaps, the top-attended table, raw arrays, and corpus layer drift."""
from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..cli import user_errors


@click.command()
@click.argument("texts", nargs=-1)
@click.option("--model", default=None, help="Model folder, hub id or export folder. Default: the bundled all-MiniLM-L6-v2.")
@click.option("--layers", default="all", show_default=True,
              help="Attention layers for the heatmaps and the table: 'all', 'last', or indices like '0,2-4' (0-based).")
@click.option("--heads", default="all", show_default=True, help="Heads drawn and maxed over: 'all' or indices like '0-3,7'.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="inspect-out", show_default=True,
              help="Folder for the PNG / HTML / CSV / NPZ outputs (created; files in it are replaced).")
@click.option("--ignore-special", is_flag=True, help="Leave [CLS] / [SEP] (or <s> / </s>) out of the top-attended table.")
@click.option("--corpus", type=click.Path(dir_okay=False), default=None,
              help="Also compute layer drift over this file: one text per line, or .jsonl with a 'text' field.")
@click.option("--save-arrays", is_flag=True, help="Write arrays/text{i}.npz: hidden states, attentions, tokens.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--max-length", type=int, default=None, help="Tokens per text (longer texts are truncated). Default: the export's.")
@user_errors
def inspect(texts, model, layers, heads, out_dir, ignore_special, corpus, save_arrays, device, max_length) -> None:
    """Show what the model does with TEXT: attentions per layer and head, and (with --corpus) how layers drift."""
    from .. import Embedder
    from ..inspect_outputs import corpus_drift, format_drift, read_corpus, write_drift_outputs, write_text_outputs
    from ..inspection import select_indices, special_tokens

    if not texts and not corpus:
        raise click.UsageError("give at least one TEXT to inspect, or --corpus FILE")
    corpus_texts = read_corpus(Path(corpus)) if corpus else None
    emb = Embedder(model=model, device=device, max_length=max_length)
    layer_list = select_indices(layers, int(emb.manifest["layers"]), "layer")
    head_list = select_indices(heads, int(emb.manifest["heads"]), "head")
    name = model_label(emb.manifest, emb.model_dir)
    out = Path(out_dir)
    files = []
    if texts:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            ins = emb.inspect(list(texts))
        for w in caught:
            click.echo(f"warning: {w.message}", err=True)
        ignore = special_tokens(emb.tokenizer) if ignore_special else set()
        written = write_text_outputs(ins, list(texts), out, layer_list, head_list, ignore, save_arrays, title=name)
        click.echo("top-attended token per layer (max over heads; cell = target weight):")
        click.echo(written.table)
        files += written.files
    if corpus_texts:
        drift, truncated = corpus_drift(emb.inspect, corpus_texts)
        if truncated:
            click.echo(f"warning: {truncated} of {len(corpus_texts)} corpus texts were truncated to {emb.max_length} tokens",
                       err=True)
        written = write_drift_outputs(drift, out, name)
        click.echo(format_drift(written.drift_summary))
        files += written.files
    click.echo(f"wrote {len(files)} files to {out}/: " + ", ".join(sorted({f.name if f.parent == out else
                                                                          f"{f.parent.name}/{f.name}" for f in files})),
               err=True)


def model_label(manifest: dict, model_dir: Path) -> str:
    """A short name for titles: the source folder's name (its parent's when it is a generic 'model' folder)."""
    source = str(manifest.get("source", {}).get("model") or model_dir)
    if "/" in source and not Path(source).exists() and source.count("/") == 1:
        return source  # hub id
    path = Path(source)
    return path.parent.name if path.name in ("model", "models", "snapshot") and path.parent.name else path.name
