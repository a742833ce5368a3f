"""Prompts, as sentence-transformers applies them: an explicit prompt, a named one, or the model's default."""
from __future__ import annotations


def apply_prompt(manifest: dict, texts: list[str], prompt_name: str | None, prompt: str | None) -> list[str]:
    """texts with the prompt prepended (an explicit prompt wins over prompt_name, which wins over the default)."""
    prompts = manifest["prompts"]
    if prompt is None:
        name = prompt_name or manifest.get("default_prompt_name")
        if prompt_name and prompt_name not in prompts:
            raise ValueError(f"prompt_name {prompt_name!r} not found; the model defines {sorted(prompts) or 'no prompts'}")
        prompt = prompts.get(name, "") if name else ""
    return [prompt + t for t in texts] if prompt else texts


def prompt_named(manifest: dict, *names: str) -> str | None:
    """The first of names that the model defines as a prompt, else None."""
    return next((n for n in names if n in manifest["prompts"]), None)
