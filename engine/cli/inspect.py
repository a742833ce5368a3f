"""`engine inspect TEXT...`: options -> InspectJob -> run_inspect; prints the table, drift summary and files."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import DEVICES, EmbedderConfig
from .errors import handle_errors
from .terminal import argument_text, echo


@click.command()
@click.argument("texts", nargs=-1)
@click.option("--model", default=None, help="Model folder, hub id or export folder. Default: the bundled all-MiniLM-L6-v2.")
@click.option("--layers", default="all", show_default=True,
              help="Attention layers for the heatmaps and the table: 'all', 'last', or indices like '0,2-4' (0-based).")
@click.option("--heads", default="all", show_default=True, help="Heads drawn and maxed over: 'all' or indices like '0-3,7'.")
@click.option("--out", "out", type=click.Path(file_okay=False), default="inspect-out", show_default=True,
              help="Folder for the PNG / HTML / CSV / NPZ outputs (created; files in it are replaced).")
@click.option("--ignore-special", is_flag=True, help="Leave [CLS] / [SEP] (or <s> / </s>) out of the top-attended table.")
@click.option("--corpus", type=click.Path(dir_okay=False), default=None,
              help="Also compute layer drift over this file: one text per line, or .jsonl with a 'text' field.")
@click.option("--save-arrays", is_flag=True, help="Write arrays/text{i}.npz: hidden states, attentions, tokens.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--max-length", type=int, default=None, help="Tokens per text (longer texts are truncated). Default: the export's.")
@handle_errors
def inspect(texts, model, device, max_length, **options) -> None:
    """Show what the model does with TEXT: attentions per layer and head, and (with --corpus) how layers drift."""
    from ..inspect import InspectJob, run_inspect

    decoded = [argument_text(t) for t in texts]
    for i, (_, replaced) in enumerate(decoded):
        if replaced:
            echo(f"warning: TEXT {i} (text{i} in the outputs) holds bytes that are not UTF-8; they were replaced by "
                 "U+FFFD (the replacement character); pass UTF-8 text, or set a UTF-8 locale", err=True)
    job = InspectJob(texts=tuple(t for t, _ in decoded),
                     embedder=EmbedderConfig(model=model, device=device, max_length=max_length), **options)
    result = run_inspect(job)
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True)
    if result.table:
        echo("top-attended token per layer (max over heads; cell = target weight):")
        echo(result.table)
    if result.drift:
        echo(result.drift)
    out = Path(job.out)
    names = sorted({f.name if f.parent == out else f"{f.parent.name}/{f.name}" for f in result.files})
    echo(f"wrote {len(result.files)} files to {out}/: " + ", ".join(names), err=True)
