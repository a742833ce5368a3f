"""Random models of today's embedding architectures (ModernBERT, NomicBert, GTE, Qwen3, Gemma3), in HF layout,
optionally with a sentence-transformers layout (Pooling, Dense, Normalize) that mirrors the real checkpoints'.
Tiny ones for the tests (tests/test_export_modern.py); sized like the real models' first layers for
benchmarks/architectures.py. There is no hub access here, so the weights are random and the tokenizers small.

Each config keeps the feature the real model depends on and the exporter must get right: rotary positions everywhere,
ModernBERT's local/global alternation and Gemma3's sliding layers with windows (MODERN_WINDOW) shorter than most
validation texts, grouped-query attention for the decoders, Gemma3's bidirectional flag, Qwen3's EOS appended by the
tokenizer.
"""
from __future__ import annotations

import json
from pathlib import Path

TINY_MAX_LENGTH = 64  # positions of the tiny test models

MODERN_ARCHITECTURES = ("qwen3", "modernbert", "gemma3_text", "gte", "nomic_bert")
MODERN_WINDOW = 16  # tokens in a local / sliding attention window: the validation texts run to 64

_SPECIALS = {
    # Qwen3-Embedding: no opening token, the tokenizer appends <|endoftext|>, which is also the pad token.
    "qwen3": {"order": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "pad": "<|endoftext|>", "unk": None,
              "cls": None, "sep": "<|endoftext|>", "mask": None, "bos": None, "eos": "<|endoftext|>"},
    # EmbeddingGemma: <bos> text <eos>, pad id 0.
    "gemma3_text": {"order": ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"], "pad": "<pad>", "unk": "<unk>",
                    "cls": "<bos>", "sep": "<eos>", "mask": "<mask>", "bos": "<bos>", "eos": "<eos>"},
    "modernbert": {"order": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "pad": "[PAD]", "unk": "[UNK]",
                   "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "bos": "[CLS]", "eos": "[SEP]"},
    "gte": {"order": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "pad": "<pad>", "unk": "<unk>",
            "cls": "<s>", "sep": "</s>", "mask": "<mask>", "bos": "<s>", "eos": "</s>"},
    "nomic_bert": {"order": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "pad": "[PAD]", "unk": "[UNK]",
                   "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "bos": "[CLS]", "eos": "[SEP]"},
}


def train_tokenizer(kind: str, specials: dict, texts: list[str], vocab_size: int = 400):
    """A vocab_size-token WordPiece (BERT-style) or byte-level BPE (RoBERTa-style) tokenizer trained on real text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=specials["unk"]))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials["order"])
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials["order"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    # Encoders wrap a text in cls ... sep; a decoder's template may drop the opening token (Qwen3: text then EOS).
    cls, sep = specials.get("cls"), specials["sep"]
    lead = f"{cls} " if cls else ""
    tok.post_processor = processors.TemplateProcessing(
        single=f"{lead}$A {sep}", pair=f"{lead}$A {sep} $B:1 {sep}:1",
        special_tokens=[(t, tok.token_to_id(t)) for t in (cls, sep) if t],
    )
    return tok


def _config(arch: str, ids: dict, vocab: int, layers: int, max_length: int) -> dict:
    """Hidden 64, 4 heads (2 key/value heads for the decoders), rotary, 64 positions."""
    common = {"vocab_size": vocab, "hidden_size": 64, "num_hidden_layers": layers, "num_attention_heads": 4,
              "max_position_embeddings": max_length, "pad_token_id": ids["pad"]}
    if arch == "qwen3":
        return common | {"intermediate_size": 128, "num_key_value_heads": 2, "head_dim": 16, "eos_token_id": ids["eos"],
                         "bos_token_id": None, "tie_word_embeddings": True}
    if arch == "gemma3_text":
        return common | {"intermediate_size": 128, "num_key_value_heads": 2, "head_dim": 16, "query_pre_attn_scalar": 16,
                         "sliding_window": MODERN_WINDOW, "use_bidirectional_attention": True,
                         "layer_types": ["sliding_attention"] * (layers - 1) + ["full_attention"],
                         "bos_token_id": ids["bos"], "eos_token_id": ids["eos"]}
    if arch == "modernbert":  # every third layer global (as in the real model), the others see MODERN_WINDOW tokens
        return common | {"intermediate_size": 96, "local_attention": MODERN_WINDOW, "global_attn_every_n_layers": 3,
                         "bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "cls_token_id": ids["bos"],
                         "sep_token_id": ids["eos"]}
    if arch == "gte":
        return common | {"intermediate_size": 128, "type_vocab_size": 1}
    return common | {"intermediate_size": 128, "type_vocab_size": 2}  # nomic_bert (SwiGLU MLP)


def build_modern_model(arch: str, folder: Path, texts: list[str], layers: int = 2, overrides: dict | None = None,
                       vocab_size: int = 400, max_length: int = TINY_MAX_LENGTH) -> Path:
    """A random model of arch (seed 0) plus its fast tokenizer, saved in HF layout; overrides replace config fields."""
    import torch
    from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

    sp = _SPECIALS[arch]
    tok = train_tokenizer("wordpiece" if arch == "nomic_bert" else "bpe", sp, texts, vocab_size)
    names = ["input_ids", "token_type_ids", "attention_mask"] if arch == "nomic_bert" else ["input_ids", "attention_mask"]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, model_input_names=names, model_max_length=max_length,
        **{f"{k}_token": sp[k] for k in ("unk", "pad", "cls", "sep", "mask", "bos", "eos") if sp[k]},
    )
    ids = {k: tok.token_to_id(sp[k]) if sp[k] else None for k in ("pad", "bos", "eos")}
    config = AutoConfig.for_model(arch, **(_config(arch, ids, tok.get_vocab_size(), layers, max_length) | (overrides or {})))
    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_dense(folder: Path, name: str, in_features: int, out_features: int, activation: str, seed: int) -> dict:
    """A sentence-transformers Dense module folder with random weights; returns its modules.json entry."""
    import torch
    from safetensors.torch import save_file

    path = folder / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"in_features": in_features, "out_features": out_features, "bias": True,
                                                  "activation_function": activation}))
    g = torch.Generator().manual_seed(seed)
    save_file({"linear.weight": torch.randn(out_features, in_features, generator=g) / in_features ** 0.5,
               "linear.bias": torch.randn(out_features, generator=g) * 0.1}, str(path / "model.safetensors"))
    return {"name": name, "path": name, "type": "sentence_transformers.models.Dense"}


def write_st_modules(folder: Path, pooling_mode, dense: list[tuple[int, int, str]] = (), normalize: bool = True,
                     prompts: dict | None = None, max_seq_length: int | None = None) -> Path:
    """Give folder a sentence-transformers layout: Transformer, Pooling(pooling_mode), Dense..., Normalize."""
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": hidden, "pooling_mode": pooling_mode}))
    for i, (n_in, n_out, act) in enumerate(dense):
        modules.append(write_dense(folder, f"{i + 2}_Dense", n_in, n_out, act, seed=100 + i) | {"idx": len(modules)})
    if normalize:
        idx = len(modules)
        (folder / f"{idx}_Normalize").mkdir(exist_ok=True)
        modules.append({"idx": idx, "name": str(idx), "path": f"{idx}_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    if max_seq_length is not None:
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    st = {"prompts": prompts or {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(st))
    return folder
