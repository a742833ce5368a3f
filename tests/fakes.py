"""A fake backend, tokenizer and manifest: the whole runtime pipeline (and the server's batcher, and the bulk job's
window loop) runs over them with no model, in milliseconds.

The fake backend's vectors are a known function of each row's real tokens, so a test can check that every result
went back to its own input, whatever the batching, padding, ordering or threads did on the way.
"""
from __future__ import annotations

import threading

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from engine import Embedder, EmbedderConfig

WORDS = ("the a an of to in is it that for on with as was by at be this from or are which one has not but all can "
         "more time their been if will so no out up into than other its only when new some could these two may first "
         "then do any like my now over such our man me even most made after also did many before must through back "
         "years where much your way well down should because each just those people how too little state good very").split()
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
DIM = 4


def fake_tokenizer() -> Tokenizer:
    """A word-level tokenizer over WORDS with BERT's framing: [CLS] text [SEP], and [CLS] a [SEP] b [SEP] for pairs."""
    vocab = {w: i for i, w in enumerate(SPECIALS + tuple(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok


def fake_manifest(max_length: int = 32, input_kind: str = "text", token_embeddings: bool = True) -> dict:
    """What an export's manifest.json says, for a model of DIM-wide vectors."""
    outputs = ["sentence_embedding"] + (["token_embeddings"] if token_embeddings else [])
    return {"format_version": 1, "valid": True, "architecture": "fake", "layers": 1, "hidden_size": DIM, "heads": 1,
            "source": {"model": "fake-model", "path": ".", "revision": None, "content_hash": "fake"},
            "embedding_dim": DIM, "pooling": "mean", "normalize": False, "precision": "fp32", "max_length": max_length,
            "pad_token_id": 0, "prompts": {"query": "query: "}, "default_prompt_name": None,
            "inputs": ["input_ids", "attention_mask", "token_type_ids"], "outputs": {"embed.onnx": outputs},
            "input": input_kind, "head_outputs": {h: o for h, o in (("pooled", "sentence_embedding"), ("tokens", "token_embeddings"))
                                           if o in outputs}}


def expected_vector(ids) -> np.ndarray:
    """The fake backend's pooled vector of one sequence's real token ids."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.array([len(ids), ids.sum(), ids[0], ids[-1]], dtype=np.float32)


class FakeBackend:
    """A Backend whose outputs depend only on each row's real tokens; records the batches it ran."""

    device = "cpu"
    providers = ["FakeExecutionProvider"]
    inputs = ("input_ids", "attention_mask", "token_type_ids")
    outputs = {"sentence_embedding": (None, DIM), "token_embeddings": (None, None, DIM)}

    def __init__(self, fail_on_token: int | None = None) -> None:
        self.batches = []  # every Batch run, in order
        self.threads = set()  # names of the threads that called run
        self.fail_on_token = fail_on_token
        self._lock = threading.Lock()

    def run(self, batch, outputs):
        with self._lock:
            self.batches.append(batch)
            self.threads.add(threading.current_thread().name)
        ids, mask = batch.input_ids, batch.attention_mask
        if self.fail_on_token is not None and (ids == self.fail_on_token).any():
            raise RuntimeError(f"the fake backend refuses token {self.fail_on_token}")
        out = {}
        if "sentence_embedding" in outputs:
            out["sentence_embedding"] = np.stack([expected_vector(row[m > 0]) for row, m in zip(ids, mask)])
        if "token_embeddings" in outputs:
            out["token_embeddings"] = np.repeat((ids * mask)[..., None], DIM, axis=2).astype(np.float32)
        return out


def fake_embedder(backend: FakeBackend | None = None, manifest: dict | None = None, **options) -> Embedder:
    """An Embedder over a FakeBackend (options: EmbedderConfig's fields)."""
    return Embedder.from_backend(backend or FakeBackend(), fake_tokenizer(), manifest or fake_manifest(),
                                 EmbedderConfig(device="cpu", **options))


def sentence(rng: np.random.Generator, words: int) -> str:
    """A text of that many known words."""
    return " ".join(rng.choice(WORDS, size=words))
