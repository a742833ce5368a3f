"""Which layers and heads to show (user selections), and which tokens count as special."""
from __future__ import annotations

from tokenizers import Tokenizer

from ..errors import InputError
from ..runtime.tokenize import special_affixes


def special_tokens(tokenizer: Tokenizer) -> set[str]:
    """The word pieces the post-processor adds around a text ([CLS] and [SEP], or <s> and </s>)."""
    prefix, suffix = special_affixes(tokenizer)
    return {tokenizer.id_to_token(i) for i in prefix + suffix}


def select_indices(spec: str | int | list[int] | None, count: int, what: str) -> list[int]:
    """Parse a layer / head selection into sorted unique indices in 0..count-1.

    spec: None or 'all' (every index), 'last', an int, a list of ints, or a comma list of ints and ranges ('0,2-4').
    Raises InputError naming the valid range when an index is outside 0..count-1.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(count))
    if isinstance(spec, int):
        items = [spec]
    elif isinstance(spec, str):
        items = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if part.lower() == "last":
                items.append(count - 1)
                continue
            lo, sep, hi = part.partition("-")
            try:
                bounds = (int(lo), int(hi)) if sep and lo else (int(part), int(part))
            except ValueError:
                raise InputError(f"{what} selection {spec!r} is not understood; use 'all', 'last', or indices like "
                                 f"'0,2-4' in 0..{count - 1}") from None
            _check_range(bounds, count, what)  # before expanding: '0-30000000' must not build a huge list
            items.extend(range(bounds[0], bounds[1] + 1))
    else:
        items = [int(x) for x in spec]
    if not items:
        raise InputError(f"{what} selection {spec!r} selects nothing; valid {what}s are 0..{count - 1}")
    bad = [i for i in items if not 0 <= i < count]
    if bad:
        raise InputError(f"{what} {bad[0]} is out of range; the model has {count} {what}s, valid range 0..{count - 1}")
    return sorted(set(items))


def _check_range(bounds: tuple[int, int], count: int, what: str) -> None:
    bad = next((b for b in bounds if not 0 <= b < count), None)
    if bad is not None:
        raise InputError(f"{what} {bad} is out of range; the model has {count} {what}s, valid range 0..{count - 1}")
