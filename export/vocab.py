"""The tokenizer checks of an export: a vocabulary exists and reads ordinary text, and every id it can produce has a
row in the model's embedding table."""
from __future__ import annotations

from pathlib import Path

from .errors import ModelSourceError
from .sentences import VALIDATION_TEXTS

# The files a Hugging Face tokenizer reads its vocabulary from (fast: tokenizer.json; slow: the others).
VOCAB_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model", "spiece.model",
               "tokenizer.model", "spm.model")
MAX_UNK_SHARE = 0.5  # of the validation texts' tokens; a real vocabulary maps well under 1% of English to [UNK]


def check_vocabulary_files(folder: Path) -> None:
    """Refuse a folder with none of the vocabulary files: transformers would build a tokenizer of special tokens only,
    and every word would become the unknown token."""
    if not any((folder / name).is_file() for name in VOCAB_FILES):
        raise ModelSourceError(f"{folder} has no tokenizer vocabulary: none of {', '.join(VOCAB_FILES)} is there, so "
                               "every word would become the unknown token; copy the model's tokenizer files into the folder")


def check_reads_text(tokenizer, folder: Path) -> None:
    """Refuse a tokenizer that maps most of the validation texts' tokens to its unknown token."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return  # byte-level vocabularies have no unknown token
    ids = [i for enc in tokenizer.backend_tokenizer.encode_batch(list(VALIDATION_TEXTS), add_special_tokens=False) for i in enc.ids]
    share = sum(i == unk for i in ids) / max(len(ids), 1)
    if not ids or share > MAX_UNK_SHARE:
        raise ModelSourceError(f"{folder}: the tokenizer maps {share:.0%} of ordinary English text to its unknown token "
                               f"{tokenizer.unk_token!r} (vocabulary of {len(tokenizer):,} tokens), so unrelated texts "
                               "would get the same vector; restore the model's own tokenizer files (tokenizer.json)")


def check_ids_fit(tokenizer, rows: int | None, table: str, folder: Path) -> None:
    """Refuse a tokenizer with ids past the embedding table's rows (added tokens without resize_token_embeddings, or a
    tokenizer from another model): those ids would crash the graph at run time. Added tokens count."""
    if rows is None:
        return
    vocab = tokenizer.get_vocab()  # added tokens included
    size = max(vocab.values()) + 1 if vocab else 0
    if size <= rows:
        return
    inert = _inert_specials(tokenizer)
    past = sorted((i, token) for token, i in vocab.items() if i >= rows and i not in inert)
    if not past:
        return  # only special tokens that ordinary text never produces (Gemma 3's <image_soft_token>: id 262,144)
    added = set(tokenizer.get_added_vocab())
    shown = ", ".join(repr(t) for _, t in past[:3]) + (f" and {len(past) - 3:,} more" if len(past) > 3 else "")
    kind = "added tokens" if all(t in added for _, t in past) else "tokens"
    raise ModelSourceError(
        f"{folder}: the tokenizer has {size:,} token ids but {table} has {rows:,} rows; {len(past):,} {kind} "
        f"({shown}; ids {rows:,}..{size - 1:,}) have no embedding row and would crash every batch they are in. Resize "
        "the embeddings to the tokenizer (model.resize_token_embeddings(len(tokenizer)), then save_pretrained), or use "
        "the model's own tokenizer")


def _inert_specials(tokenizer) -> set[int]:
    """Ids of added special tokens that no text gets unless it spells them out: not inserted around every text (as
    [CLS] and [SEP] are), not padding, not the unknown token. Gemma 3 ships one past its embedding table."""
    inserted = set(tokenizer("", add_special_tokens=True)["input_ids"]) | {tokenizer.pad_token_id, tokenizer.unk_token_id}
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return {i for i, token in decoder.items() if getattr(token, "special", False) and i not in inserted}
