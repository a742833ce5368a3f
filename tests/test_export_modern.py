"""Today's embedding architectures: tiny random models in sentence-transformers layouts like the real checkpoints'
(Qwen3-Embedding: lasttoken + EOS + instruction prompt; EmbeddingGemma: bidirectional, mean, two Dense, task prompts;
ModernBERT: local/global attention), exported once each and held to transformers and sentence-transformers.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TINY_MAX_LENGTH, cpu_session
from export.fusion import count_ops
from benchmarks.random_models import MODERN_WINDOW, build_modern_model, write_st_modules

IDENTITY, TANH = "torch.nn.modules.linear.Identity", "torch.nn.modules.activation.Tanh"
QWEN_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
# arch -> its sentence-transformers layout, after the real model of that kind
LAYOUTS = {
    "qwen3": {"pooling_mode": "lasttoken", "prompts": {"query": QWEN_QUERY, "document": ""}},
    "modernbert": {"pooling_mode": "mean", "prompts": {"query": "search_query: ", "document": "search_document: "}},
    # EmbeddingGemma: mean pooling, then 768 -> 3072 -> 768 Dense layers without activation (here 64 -> 256 -> 64)
    "gemma3_text": {"pooling_mode": "mean", "dense": [(64, 256, IDENTITY), (256, 64, IDENTITY)],
                    "prompts": {"query": "task: search result | query: ", "document": "title: none | text: "}},
    # gte-multilingual pools [CLS]; here two modes concatenated and a Tanh Dense, so both are exercised
    "gte": {"pooling_mode": ["cls", "mean_sqrt_len_tokens"], "dense": [(128, 48, TANH)]},
    "nomic_bert": {"pooling_mode": "mean", "prompts": {"query": "search_query: ", "document": "search_document: "}},
}
ARCHS = tuple(LAYOUTS)
EXPECTED_POOLING = {"qwen3": "lasttoken", "modernbert": "mean", "gemma3_text": "mean", "gte": "cls+mean-sqrt-len", "nomic_bert": "mean"}
LENGTHS = [5, 64, 1, 17, 33, 2, 48, 9, 24]  # one padded batch; most rows cross the local window
ATOL = 1e-5


@pytest.fixture(scope="module")
def modern(tmp_path_factory, tokenizer_texts):
    """arch -> (model folder, export folder, manifest, SentenceTransformer), built and exported on first use."""
    from export import ExportOptions, export_model

    root = tmp_path_factory.mktemp("modern")
    cache = {}

    def get(arch: str):
        if arch not in cache:
            from sentence_transformers import SentenceTransformer

            layout = LAYOUTS[arch]
            folder = build_modern_model(arch, root / "models" / arch, tokenizer_texts, layers=2)
            write_st_modules(folder, layout["pooling_mode"], layout.get("dense", ()), normalize=True,
                             prompts=layout.get("prompts"), max_seq_length=TINY_MAX_LENGTH)
            out = root / "exports" / arch
            manifest = export_model(ExportOptions(model=str(folder), out_dir=str(out), token_embeddings=True), log=lambda _m: None)
            st = SentenceTransformer(str(folder), device="cpu")
            cache[arch] = folder, out, manifest, st
        return cache[arch]

    return get


@pytest.fixture(scope="module")
def embedders(modern):
    """arch -> Embedder on its export."""
    from engine import Embedder

    cache = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = Embedder(modern(arch)[1], device="cpu", threads=1)
        return cache[arch]

    return get


@pytest.mark.parametrize("arch", ARCHS)
def test_export_validates_every_output_within_1e5(arch, modern):
    folder, out, m, _st = modern(arch)
    assert m["valid"] and m["architecture"] == arch and m["padding_side"] == "right"
    assert m["pooling"] == EXPECTED_POOLING[arch] and m["normalize"] is True and m["max_length"] == TINY_MAX_LENGTH
    assert m["defaults_from"] == "sentence-transformers"
    dense = LAYOUTS[arch].get("dense", ())
    assert [(d["in_features"], d["out_features"], d["activation"]) for d in m["dense"]] == list(dense)
    assert m["embedding_dim"] == (dense[-1][1] if dense else 64 * len(m["pooling"].split("+")))
    for report in m["parity"].values():
        assert report["pass"] and report["token_lengths"] == [1, TINY_MAX_LENGTH] and report["batch_sizes"] == [1, 4, 7]
        for name, o in report["outputs"].items():
            assert o["max_abs"] <= ATOL, (name, o["max_abs"])
    assert m["fused_ops"] == count_ops(out / "embed.onnx")
    if not m["attention_fused"]:
        assert any(f"attention did not fuse for {arch}" in n for n in m["notes"])


@pytest.mark.parametrize("arch", ARCHS)
def test_graphs_match_transformers_at_lengths_across_the_window(arch, modern, real_texts, export_helpers):
    folder, out, m, _st = modern(arch)
    rows = export_helpers.rows_of_lengths(out, real_texts, LENGTHS)
    feed = export_helpers.pad_rows(rows, m["inputs"], m["pad_token_id"])
    _sent, tokens = cpu_session(out / "embed.onnx").run(None, feed)
    last, hidden, attn = cpu_session(out / "inspect.onnx").run(None, feed)
    wants = export_helpers.reference(folder)(rows, "token_type_ids" in m["inputs"])
    for i, want in enumerate(wants):
        t = LENGTHS[i]
        for got, ref in ((tokens[i, :t], want["last_hidden_state"]), (last[i, :t], want["last_hidden_state"]),
                         (hidden[:, i, :t], want["hidden_states"]), (attn[:, i, :, :t, :t], want["attentions"])):
            assert np.abs(got - ref).max() <= ATOL, f"row {i} (length {t})"
        assert np.abs(attn[:, i, :, :t, t:]).max(initial=0.0) == 0.0  # padding gets no attention from real tokens


def _visible(arch: str, config: dict, layer: int, t: int) -> np.ndarray:
    """(t, t) bool: which keys each query may attend to, from the architecture's documented attention pattern."""
    q, k = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
    if arch == "qwen3":
        return k <= q  # causal decoder
    if arch == "modernbert" and layer % 3:  # local layers: local_attention // 2 tokens on each side
        return np.abs(q - k) <= config["local_attention"] // 2
    if arch == "gemma3_text" and config["layer_types"][layer] == "sliding_attention":
        return np.abs(q - k) <= MODERN_WINDOW // 2  # bidirectional sliding window
    return np.ones((t, t), dtype=bool)  # bidirectional, global


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_mask_is_right_for_the_architecture(arch, modern, real_texts, export_helpers):
    """Every attention weight the mask allows is positive, every one it forbids is zero (the window is shorter than t)."""
    folder, out, m, _st = modern(arch)
    config = json.loads((folder / "config.json").read_text())
    t = 40
    rows = export_helpers.rows_of_lengths(out, real_texts, [t, 12])
    _last, _hidden, attn = cpu_session(out / "inspect.onnx").run(None, export_helpers.pad_rows(rows, m["inputs"], m["pad_token_id"]))
    for layer in range(attn.shape[0]):
        allowed = _visible(arch, config, layer, t)
        weights = attn[layer, 0]  # (heads, t, t)
        assert (weights[:, ~allowed] == 0).all(), f"layer {layer} attends outside its mask"
        assert (weights[:, allowed] > 0).all(), f"layer {layer} ignores keys its mask allows"
    if arch == "qwen3":  # causal: a prefix's token vectors do not depend on what follows
        sub = [rows[0][:12]]
        (_, full_tok), (_, pre_tok) = (cpu_session(out / "embed.onnx").run(None, export_helpers.pad_rows(r, m["inputs"], m["pad_token_id"]))
                                       for r in ([rows[0]], sub))
        assert np.abs(full_tok[0, :12] - pre_tok[0]).max() <= ATOL


def _texts(real_texts: list[str]) -> list[str]:
    """Empty, one word, and real paragraphs from a few words to past max_length."""
    by_len = sorted(real_texts[:400], key=len)
    return ["", "Hi"] + by_len[:: max(1, len(by_len) // 30)][:30]


@pytest.mark.parametrize("arch", ARCHS)
def test_embedder_matches_sentence_transformers(arch, modern, embedders, real_texts):
    _folder, _out, m, st = modern(arch)
    emb = embedders(arch)
    texts = _texts(real_texts)
    lengths = [len(emb.rust_tokenizer.encode(t).ids) for t in texts]
    assert min(lengths) <= 2 and max(lengths) == TINY_MAX_LENGTH  # from the shortest to truncated at max_length
    emb.reset_stats()
    ours = emb.encode(texts, batch_size=8)
    assert emb.stats.padded_tokens > emb.stats.real_tokens  # batches really padded
    ref = st.encode(texts, batch_size=8, convert_to_numpy=True)
    assert ours.shape == ref.shape == (len(texts), m["embedding_dim"])
    assert np.abs(ours - ref).max() <= ATOL
    if "query" in m["prompts"]:  # instruction / task prompts from config_sentence_transformers.json
        q = emb.encode_query(texts[2:8])
        assert np.abs(q - st.encode_query(texts[2:8], convert_to_numpy=True)).max() <= ATOL
        assert np.abs(q - ours[2:8]).max() > 1e-3  # the prompt did change the vectors


@pytest.mark.parametrize("arch", ARCHS)
def test_text_alone_equals_text_in_a_padded_batch(arch, embedders, real_texts):
    emb = embedders(arch)
    long_texts = sorted(real_texts[:400], key=len)[-6:]
    short = "Then I tried to find some way of embracing my mother's ghost."
    alone = emb.encode([short])[0]
    batched = emb.encode(long_texts[:3] + [short] + long_texts[3:], batch_size=7)[3]
    assert np.abs(alone - batched).max() <= 1e-6


def test_qwen3_tokenizer_appends_eos_and_chunks_keep_it(modern, embedders):
    from engine.runtime.tokenize import special_affixes

    folder, _out, _m, st = modern("qwen3")
    emb = embedders("qwen3")
    eos = json.loads((folder / "config.json").read_text())["eos_token_id"]
    ids = emb.rust_tokenizer.encode("a short query").ids
    assert ids[-1] == eos and ids[0] != eos
    assert ids == st.tokenizer("a short query")["input_ids"]
    assert special_affixes(emb.rust_tokenizer) == ([], [eos])


@pytest.mark.parametrize("pooling,ok", [("cls+mean", True), ("lasttoken+mean-sqrt-len+max", True), ("mean+mean", False),
                                        ("cls+pooler", False), ("last-k-mean+cls", False), ("lasttoken", True)])
def test_pooling_combinations_are_validated(pooling, ok, tmp_path):
    from export import ExportOptions, OptionError

    if ok:
        assert ExportOptions(model="m", out_dir=str(tmp_path), pooling=pooling).pooling == pooling
    else:
        with pytest.raises(OptionError, match="joined by '\\+'"):
            ExportOptions(model="m", out_dir=str(tmp_path), pooling=pooling)


@pytest.mark.parametrize("activation", ["os.system", "torch.nn.functional.relu", "torch.nn.NoSuchThing"])
def test_dense_activation_outside_torch_nn_modules_is_refused(activation, tmp_path):
    from export import ModelSourceError
    from export.dense import load_dense

    with pytest.raises(ModelSourceError, match="is not a torch.nn module class"):
        load_dense(tmp_path, {"in_features": 4, "out_features": 2, "activation_function": activation})
