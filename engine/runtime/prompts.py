"""Prompts, as sentence-transformers resolves them: an explicit prompt, a named one, or the default prompt name.

The prompts and the default name are an Embedder's own state (Embedder.prompts, Embedder.default_prompt_name),
started from the export's metadata and the constructor's arguments the way SentenceTransformer starts them.
"""
from __future__ import annotations

from ..errors import ConfigError

PLACEHOLDERS = ("query", "document")  # sentence-transformers' prompt names that exist (empty) on every model


def initial_prompts(saved: dict, given: dict | None) -> dict[str, str]:
    """The prompts a SentenceTransformer would hold: its empty placeholders, the ones given, then the saved ones for
    names not given (sentence-transformers' merge order)."""
    check_prompts(given or {})
    prompts: dict = {name: None for name in PLACEHOLDERS} | dict(given or {})
    for name, text in saved.items():
        if prompts.get(name) is None:
            prompts[name] = text
    return {name: "" if text is None else text for name, text in prompts.items()}


def defined_prompts(prompts: dict, placeholders: set[str]) -> list[str]:
    """The prompt names a model really defines: all but sentence-transformers' placeholders still empty."""
    return sorted(n for n, text in prompts.items() if n not in placeholders or text)


def check_requested_prompt(prompt_name: str | None, prompts: dict, placeholders: set[str]) -> None:
    """A prompt name a request asks for (the server): one the model's metadata or the Embedder's owner defines, not
    an empty placeholder; TEI likewise refuses a name the model does not define."""
    defined = defined_prompts(prompts, placeholders)
    if prompt_name is not None and prompt_name not in defined:
        raise ValueError(f"prompt_name {prompt_name!r} not found; the model defines {defined or 'no prompts'}")


def check_prompts(prompts) -> None:
    """Raise ConfigError unless prompts maps names to prompt strings."""
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, (str, type(None)))
                                                 for k, v in prompts.items()):
        raise ConfigError(f"prompts must be a dict of prompt name -> prompt text, e.g. {{'query': 'query: '}}, "
                          f"got {prompts!r}")


def check_default_prompt_name(name, prompts: dict) -> None:
    """Raise ConfigError unless name is None or one of prompts."""
    if name is not None and name not in prompts:
        raise ConfigError(f"default_prompt_name {name!r} is not one of the prompts {sorted(prompts)}; add it first "
                          f"(emb.prompts[{name!r}] = '...') or use None for no default prompt")


def apply_prompt(prompts: dict, default_name: str | None, texts: list[str], prompt_name: str | None,
                 prompt: str | None) -> list[str]:
    """texts with the prompt prepended (an explicit prompt wins over prompt_name, which wins over the default)."""
    if prompt is None:
        if prompt_name is not None and prompt_name not in prompts:
            raise ValueError(f"prompt_name {prompt_name!r} not found; the prompts are {sorted(prompts) or 'none'}")
        name = prompt_name if prompt_name is not None else default_name
        if name is not None and name not in prompts:  # the default's prompt was removed after it was chosen
            check_default_prompt_name(name, prompts)
        prompt = (prompts.get(name) or "") if name is not None else ""
    return [prompt + t for t in texts] if prompt else texts


def prompt_named(prompts: dict, *names: str) -> str | None:
    """The first of names that is one of prompts, else None (encode_query / encode_document's choice)."""
    return next((n for n in names if n in prompts), None)
