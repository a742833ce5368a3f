"""sentence-transformers' documented usage patterns, each run with SentenceTransformer and with Embedder side by side:
the same values, types and shapes, or, where an ONNX export cannot honour a pattern, an error that names the fix.

Covers every pattern of issue 22's drop-in list: prompts / default_prompt_name (attributes and constructor),
semantic_search.py as written, similarity() as a torch tensor (topk, argmax), SimilarityFunction, similarity_fn_name
and truncate_dim in the constructor, truncate_(sentence_)embeddings, get_max_seq_length, max_seq_length beyond the
export, the multi-process pool, to / eval / half / save / tokenize / model[0], the tokenizer, device, encode(device=
[...]), output_value=None, encode([]) and int8 / uint8 codes.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer, SimilarityFunction, quantize_embeddings

from engine import Embedder, EmbedderConfig
from engine.errors import ConfigError, UnsupportedError
from engine.runtime.postprocess import quantize
from fakes import FakeBackend, fake_manifest, fake_tokenizer

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def texts(real_texts) -> list[str]:
    return [t for t in real_texts if 20 < len(t) < 400][:9]


@contextlib.contextmanager
def restored(*objects, names=("prompts", "default_prompt_name", "similarity_fn_name", "truncate_dim", "max_seq_length")):
    """Put the session models' sentence-transformers state back after a test changes it."""
    saved = [(o, {n: (dict(v) if isinstance(v := getattr(o, n), dict) else v) for n in names}) for o in objects]
    try:
        yield
    finally:
        for o, state in saved:
            o.default_prompt_name = None
            for n, v in state.items():
                setattr(o, n, v)


def close(ours, ref, atol=1e-5) -> None:
    """Same type and shape, values within atol (torch tensors or numpy arrays)."""
    assert type(ours) is type(ref), (type(ours), type(ref))
    assert tuple(ours.shape) == tuple(ref.shape) and ours.dtype == ref.dtype
    np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(ref, np.float64), atol=atol)


# -- similarity, semantic search ---------------------------------------------------------------------------------------
def semantic_search_example(embedder, corpus: list[str], queries: list[str]) -> list:
    """examples/sentence_transformer/applications/semantic-search/semantic_search.py as written (its prints
    collected), and the alternative its closing comment shows (util.semantic_search)."""
    from sentence_transformers.util import semantic_search

    printed = []
    # Use "convert_to_tensor=True" to keep the tensors on GPU (if available)
    corpus_embeddings = embedder.encode_document(corpus, convert_to_tensor=True)
    top_k = min(5, len(corpus))
    for query in queries:
        query_embedding = embedder.encode_query(query, convert_to_tensor=True)
        # We use cosine-similarity and torch.topk to find the highest 5 scores
        similarity_scores = embedder.similarity(query_embedding, corpus_embeddings)[0]
        scores, indices = torch.topk(similarity_scores, k=top_k)
        for score, idx in zip(scores, indices):
            printed.append((f"(Score: {score:.4f})", corpus[idx], float(score)))
        hits = semantic_search(query_embedding, corpus_embeddings, top_k=5)[0]
        printed += [(corpus[hit["corpus_id"]], "{:.4f}".format(hit["score"])) for hit in hits]
    return printed


def test_semantic_search_example_as_written(embedder, st_model, real_texts):
    corpus = [t for t in real_texts if 40 < len(t) < 300][:9]
    queries = ["How do I open a file?", "What does the for statement do?", "How are exceptions raised?"]
    ours, ref = semantic_search_example(embedder, corpus, queries), semantic_search_example(st_model, corpus, queries)
    assert [line[1] for line in ours if len(line) == 3] == [line[1] for line in ref if len(line) == 3]  # same ranking
    assert [line[0] for line in ours if len(line) == 2] == [line[0] for line in ref if len(line) == 2]
    np.testing.assert_allclose([line[2] for line in ours if len(line) == 3], [line[2] for line in ref if len(line) == 3],
                               atol=1e-5)


def test_similarity_is_a_torch_tensor_with_argmax(embedder, st_model, texts):
    a, b = embedder.encode(texts[:4]), embedder.encode(texts[4:])
    ours, ref = embedder.similarity(a, b), st_model.similarity(a, b)
    close(ours, ref, atol=1e-6)
    assert torch.equal(ours.argmax(dim=1), ref.argmax(dim=1))
    close(embedder.similarity_pairwise(a, b[:4]), st_model.similarity_pairwise(a, b[:4]), atol=1e-6)


@pytest.mark.parametrize("fn", [SimilarityFunction.DOT_PRODUCT, SimilarityFunction.EUCLIDEAN, SimilarityFunction.MANHATTAN,
                                SimilarityFunction.COSINE, "dot", "euclidean", "manhattan", "cosine"], ids=str)
def test_similarity_function_enum_and_names(embedder, st_model, texts, fn):
    a, b = embedder.encode(texts[:3]), embedder.encode(texts[3:7])
    with restored(embedder, st_model):
        embedder.similarity_fn_name = st_model.similarity_fn_name = fn
        assert embedder.similarity_fn_name == st_model.similarity_fn_name
        close(embedder.similarity(a, b), st_model.similarity(a, b), atol=1e-4)
        close(embedder.similarity_pairwise(a, b[:3]), st_model.similarity_pairwise(a, b[:3]), atol=1e-4)
    with pytest.raises(ValueError, match="maxsim"), restored(st_model):
        st_model.similarity_fn_name = "maxsim"
    with pytest.raises(ValueError, match="maxsim"):
        embedder.similarity_fn_name = "maxsim"


# -- sentence-transformers state: constructor, prompts, truncation, max_seq_length ------------------------------------
def test_constructor_arguments(minilm_export, minilm_path, texts):
    kw = {"similarity_fn_name": SimilarityFunction.DOT_PRODUCT, "truncate_dim": 128,
          "prompts": {"q": "query: ", "d": "passage: "}, "default_prompt_name": "q"}
    ours = Embedder(minilm_export, device="cpu", **kw)
    ref = SentenceTransformer(str(minilm_path), device="cpu", **kw)
    for name in ("similarity_fn_name", "truncate_dim", "prompts", "default_prompt_name"):
        assert getattr(ours, name) == getattr(ref, name), name
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 128
    a, b = ours.encode(texts[:3]), ref.encode(texts[:3])  # default prompt 'q', truncated to 128
    close(a, b, atol=1e-4)
    close(ours.encode(texts[:2], prompt_name="d"), ref.encode(texts[:2], prompt_name="d"), atol=1e-4)
    close(ours.similarity(a, a), ref.similarity(b, b), atol=1e-4)
    with pytest.raises(ValueError, match="'nope'"):
        SentenceTransformer(str(minilm_path), device="cpu", prompts={"q": "q: "}, default_prompt_name="nope")
    with pytest.raises(ConfigError, match="default_prompt_name 'nope'"):
        Embedder(minilm_export, device="cpu", prompts={"q": "q: "}, default_prompt_name="nope")
    with pytest.raises(ConfigError, match="truncate_dim must be an integer in 1..384"):
        Embedder(minilm_export, device="cpu", truncate_dim=0)
    with pytest.raises(ConfigError, match="similarity_fn_name"):
        Embedder(minilm_export, device="cpu", similarity_fn_name="jaccard")


def test_prompts_and_default_prompt_name_attributes(embedder, st_model, texts):
    assert embedder.prompts == st_model.prompts and embedder.default_prompt_name == st_model.default_prompt_name
    with restored(embedder, st_model):
        for model in (embedder, st_model):
            model.prompts = {"query": "query: ", "document": "passage: ", "clustering": "Identify the topic: "}
            model.default_prompt_name = "clustering"
        close(embedder.encode(texts[:3]), st_model.encode(texts[:3]), atol=1e-4)  # the default prompt applies
        close(embedder.encode_query(texts[0]), st_model.encode_query(texts[0]), atol=1e-4)
        close(embedder.encode_document(texts[:2]), st_model.encode_document(texts[:2]), atol=1e-4)
        embedder.prompts["clustering"] = st_model.prompts["clustering"] = "Topic: "  # edited in place
        close(embedder.encode(texts[:2]), st_model.encode(texts[:2]), atol=1e-4)
        assert not np.allclose(embedder.encode(texts[0]), embedder.encode(texts[0], prompt=""))
        with pytest.raises(ConfigError, match="default_prompt_name 'nope' is not one of the prompts"):
            embedder.default_prompt_name = "nope"  # sentence-transformers accepts it and applies no prompt
        with pytest.raises(ConfigError, match="prompts must be a dict"):
            embedder.prompts = ["query: "]
        embedder.prompts = {"other": "x: "}  # the default's prompt is gone: encode says so rather than ignore it
        with pytest.raises(ConfigError, match="default_prompt_name 'clustering'"):
            embedder.encode(texts[0])


def test_truncate_dim_and_truncate_sentence_embeddings(embedder, st_model, texts):
    with restored(embedder, st_model):
        embedder.truncate_dim = st_model.truncate_dim = 64
        close(embedder.encode(texts[:3]), st_model.encode(texts[:3]), atol=1e-4)
        assert embedder.get_sentence_embedding_dimension() == 64
    for name in ("truncate_embeddings", "truncate_sentence_embeddings"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # sentence-transformers' older name warns
            with getattr(embedder, name)(32), getattr(st_model, name)(32):
                ours = embedder.encode(texts[:2], normalize_embeddings=True)
                ref = st_model.encode(texts[:2], normalize_embeddings=True)
                assert embedder.get_embedding_dimension() == st_model.get_embedding_dimension() == 32
        close(ours, ref, atol=1e-4)
        assert embedder.truncate_dim is None and embedder.encode(texts[0]).shape == (384,)


def test_max_seq_length_and_get_max_seq_length(embedder, st_model):
    assert embedder.get_max_seq_length() == st_model.get_max_seq_length() == embedder.max_seq_length == 256
    with pytest.raises(ConfigError, match=r"for 512 tokens, create the Embedder with Embedder\('.*', max_length=512\)"):
        embedder.max_seq_length = 512
    assert embedder.max_seq_length == 256
    with restored(embedder, st_model):
        embedder.tokenizer.model_max_length = st_model.tokenizer.model_max_length = 16  # the same setting in both
        assert embedder.max_seq_length == st_model.max_seq_length == 16
        letters = " ".join("abcdefghijklmnopqrst")
        close(embedder.encode(letters), st_model.encode(letters), 1e-4)


def test_max_length_fix_names_the_bundled_model(engine_cache, minilm_export):
    bundled = Embedder(device="cpu", cache_dir=str(engine_cache))  # the session's export, found warm
    with pytest.raises(ConfigError, match=r"create the Embedder with Embedder\(max_length=512\)"):
        bundled.max_seq_length = 512


# -- what an export cannot do, and what it does instead ---------------------------------------------------------------
def test_multi_process_pool_is_refused_with_the_fix(embedder, texts):
    for call in (embedder.start_multi_process_pool, lambda: embedder.encode_multi_process(texts, {}),
                 lambda: embedder.stop_multi_process_pool({})):
        with pytest.raises(UnsupportedError, match=r"call encode\(texts\) directly"):
            call()
    with pytest.raises(ValueError, match="without pool="):
        embedder.encode(texts, pool={"processes": []})
    with pytest.raises(ValueError, match="without device="):
        embedder.encode(texts, device=["cpu", "cpu"])


def test_device(embedder, st_model, texts):
    assert embedder.device == "cpu" and embedder.device.type == st_model.device.type == "cpu"
    assert str(embedder.device) == str(st_model.device) and embedder.device.index is None
    assert torch.zeros(2, device=embedder.device).device.type == "cpu"
    close(embedder.encode(texts[:2], device=torch.device("cpu")), st_model.encode(texts[:2], device=torch.device("cpu")), 1e-4)
    with pytest.raises(ValueError, match=r"runs on 'cpu'.*device='cuda'"):
        embedder.encode(texts[:2], device="cuda:0")
    with pytest.raises(UnsupportedError, match="chosen when it is created"):
        embedder.device = "cuda"


def test_to_eval_half_save_model_index(embedder, st_model, texts, tmp_path):
    assert embedder.to("cpu") is embedder and embedder.to(torch.device("cpu")) is embedder and embedder.cpu() is embedder
    assert embedder.eval() is embedder and st_model.eval() is st_model and embedder.train(False) is embedder
    close(embedder.encode(texts[:2]), st_model.encode(texts[:2]), 1e-4)
    with pytest.raises(UnsupportedError, match=r"Embedder\(..., device='cuda'\)"):
        embedder.to("cuda")
    for call in (embedder.half, lambda: embedder.to(torch.float16)):
        with pytest.raises(UnsupportedError, match="precision='fp16'"):
            call()
    with pytest.raises(UnsupportedError, match=r"shutil.copytree\(emb.model_dir"):
        embedder.save(str(tmp_path / "saved"))
    with pytest.raises(UnsupportedError, match="emb.tokenizer"):
        embedder[0]
    assert st_model[0].tokenizer is st_model.tokenizer  # what model[0] is for there


def test_tokenize_matches(embedder, st_model, texts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch in (texts[:3], [(texts[0], texts[1]), (texts[2], "a")], [" ".join(texts) * 2]):
            ref, ours = st_model.tokenize(batch), embedder.tokenize(batch)
            assert list(ours) == list(ref) and ours["modality"] == ref["modality"] == "text"
            for key in ("input_ids", "token_type_ids", "attention_mask"):
                assert isinstance(ours[key], torch.Tensor) and torch.equal(ours[key], ref[key]), key


# -- the tokenizer -----------------------------------------------------------------------------------------------------
def test_tokenizer_behaves_like_the_hugging_face_one(embedder, st_model, texts):
    ours, ref = embedder.tokenizer, st_model.tokenizer
    long = " ".join(texts) * 2
    for args, kw in [((texts[0],), {}), ((texts[:3],), {}), ((texts[:3],), {"padding": True}),
                     ((texts[:3],), {"padding": "max_length", "max_length": 40, "truncation": True}),
                     ((long,), {"truncation": True}), ((long,), {"max_length": 20}), ((texts[0], texts[1]), {}),
                     ((texts[:2], [long, long]), {"truncation": "only_second", "max_length": 60}),
                     ((texts[:2],), {"return_special_tokens_mask": True, "return_offsets_mapping": True, "return_length": True}),
                     ((texts[:2],), {"padding": True, "return_tensors": "np"}),
                     ((texts[:2],), {"padding": True, "return_tensors": "pt"}),
                     ((texts[:1],), {"return_token_type_ids": False, "return_attention_mask": False})]:
        got, want = ours(*args, **kw), ref(*args, **kw)
        assert list(got) == list(want), (args, kw)
        for key in want:
            g, w = got[key], want[key]
            assert type(g) is type(w), key
            assert (torch.equal(g, w) if isinstance(w, torch.Tensor) else np.array_equal(g, w) if isinstance(w, np.ndarray)
                    else g == w), (key, kw)
    enc = ours(texts[:2], padding=True, return_tensors="pt")
    assert torch.equal(enc.input_ids, enc["input_ids"]) and enc.tokens(0) == ref(texts[:2]).tokens(0)
    ids = ref(texts[0])["input_ids"]
    assert ours.decode(ids) == ref.decode(ids) and ours.decode(ids).startswith("[CLS]") and ours.decode(ids).endswith("[SEP]")
    assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
    assert ours.decode(torch.tensor(ids)) == ref.decode(torch.tensor(ids)) and ours.decode(ids[1]) == ref.decode(ids[1])
    assert ours.batch_decode([ids, ids[:4]]) == ref.batch_decode([ids, ids[:4]]) == ours.decode([ids, ids[:4]])
    calls = [lambda t: t.convert_ids_to_tokens(ids), lambda t: t.convert_ids_to_tokens(ids[0]),
             lambda t: t.convert_ids_to_tokens(ids, skip_special_tokens=True), len, lambda t: t.get_vocab(),
             lambda t: t.convert_tokens_to_ids(["hello", "[CLS]", "qqqzzz"]), lambda t: t.num_special_tokens_to_add()]
    for text in texts[:3] + ["Hello, world! Don't stop."]:
        calls += [lambda t, x=text: t.tokenize(x), lambda t, x=text: t.encode(x),
                  lambda t, x=text: t.encode(x, add_special_tokens=False)]
    for call in calls:
        assert call(ours) == call(ref)
    for name in ("vocab_size", "model_max_length", "padding_side", "truncation_side", "model_input_names", "all_special_tokens",
                 "all_special_ids", "special_tokens_map", "cls_token", "cls_token_id", "sep_token_id", "pad_token",
                 "pad_token_id", "unk_token_id", "mask_token_id", "bos_token", "eos_token_id", "is_fast",
                 "clean_up_tokenization_spaces"):
        assert getattr(ours, name) == getattr(ref, name), name
    assert isinstance(ours.backend_tokenizer, type(ref.backend_tokenizer))
    with pytest.raises(UnsupportedError, match="tokenizer.json"):
        embedder.tokenizer = ref


def test_tokenizer_view_does_not_change_how_encode_tokenizes(embedder, texts):
    before = embedder.encode(texts[:2])
    embedder.tokenizer(texts, padding="max_length", truncation=True, max_length=8)
    np.testing.assert_array_equal(embedder.encode(texts[:2]), before)
    assert embedder.rust_tokenizer.padding is None and embedder.rust_tokenizer.truncation["max_length"] == 256


# -- encode's answers --------------------------------------------------------------------------------------------------
def test_output_value_none_gives_every_output(embedder, st_model, texts):
    ours = embedder.encode(texts[:3], output_value=None, truncate_dim=128)
    ref = st_model.encode(texts[:3], output_value=None, truncate_dim=128)
    assert isinstance(ours, list) and len(ours) == len(ref) == 3
    for o, r in zip(ours, ref):
        assert list(o) == list(r) and o["modality"] == r["modality"]
        n = int(r["attention_mask"].sum())  # sentence-transformers pads to its batch's longest text
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert isinstance(o[key], torch.Tensor) and torch.equal(o[key], r[key][:n]), key
        close(o["token_embeddings"], r["token_embeddings"][:n], atol=1e-4)
        close(o["sentence_embedding"], r["sentence_embedding"], atol=1e-4)
    one = embedder.encode(texts[0], output_value=None)
    assert isinstance(one, dict) and one["sentence_embedding"].shape == (384,)
    with pytest.raises(ValueError, match="output_value='sentence_embedding'"):
        embedder.encode(texts, output_value=None, precision="int8")


EMPTY_CASES = [{}, {"convert_to_tensor": True}, {"convert_to_numpy": False}, {"convert_to_numpy": False, "convert_to_tensor": True},
               {"output_value": "token_embeddings"}, {"output_value": None}, {"precision": "int8"},
               {"precision": "ubinary", "convert_to_tensor": True}, {"normalize_embeddings": True, "truncate_dim": 8}]


@pytest.mark.parametrize("kwargs", EMPTY_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults")
def test_empty_input_answers_like_sentence_transformers(embedder, st_model, kwargs):
    ours, ref = embedder.encode([], **kwargs), st_model.encode([], **kwargs)
    assert type(ours) is type(ref)
    if isinstance(ref, list):
        assert ours == ref == []
    else:
        assert tuple(ours.shape) == tuple(ref.shape) == (0,) and ours.dtype == ref.dtype


def test_int8_codes_use_sentence_transformers_arithmetic(embedder, st_model, real_texts):
    texts = real_texts[:24]
    floats, st_floats = embedder.encode(texts), st_model.encode(texts)
    ranges = np.vstack([floats.min(0) - 0.01, floats.max(0) + 0.01])
    for precision in ("int8", "uint8", "binary", "ubinary"):
        want = quantize_embeddings(floats, precision=precision)
        np.testing.assert_array_equal(embedder.encode(texts, precision=precision), want)  # bit for bit on our floats
        np.testing.assert_array_equal(quantize(floats, precision), want)
        np.testing.assert_array_equal(quantize(floats, precision, ranges), quantize_embeddings(floats, precision, ranges=ranges))
        np.testing.assert_array_equal(quantize(floats[:0], precision), quantize_embeddings(floats[:0], precision))
        ref = quantize_embeddings(st_floats, precision=precision)  # = st_model.encode(texts, precision=precision)
        # PyTorch's floats differ from onnxruntime's by ~1e-7: a value on a bin edge may land one step away
        assert ref.dtype == want.dtype and (np.abs(ref.astype(np.int32) - want.astype(np.int32)) > 1).sum() == 0
    tokens = embedder.encode(texts[:3], output_value="token_embeddings")
    for got, want in zip(embedder.encode(texts[:3], output_value="token_embeddings", precision="int8"),
                         quantize_embeddings(tokens, precision="int8")):
        np.testing.assert_array_equal(got, want)
    for model in (embedder, st_model):
        with pytest.raises(ValueError, match="single embedding"):
            model.encode(texts[0], precision="int8")


# -- without torch, and without a model --------------------------------------------------------------------------------
def test_without_torch_the_answers_are_numpy(minilm_export):
    code = (f"import numpy as np\nfrom engine import Embedder\ne = Embedder({str(minilm_export)!r}, device='cpu')\n"
            "v = e.encode(['a cat', 'a dog'])\n"
            "assert type(e.similarity(v, v)) is np.ndarray and type(e.encode(['x'], convert_to_tensor=True)) is np.ndarray\n"
            "assert type(e.encode([], convert_to_tensor=True)) is np.ndarray\n"
            "assert type(e.tokenize(['x'])['input_ids']) is np.ndarray\n"
            "assert type(e.encode('x', output_value=None)['token_embeddings']) is np.ndarray\n"
            "assert e.tokenizer(['a', 'a b'], padding=True, return_tensors='np')['input_ids'].shape == (2, 4)\n"
            "assert e.device.type == 'cpu'\n")
    proc = subprocess.run([sys.executable, str(HERE / "torch_free.py"), "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_fake_backend_embedder_has_the_same_surface():
    emb = Embedder.from_backend(FakeBackend(), fake_tokenizer(), fake_manifest(), EmbedderConfig(device="cpu"),
                                prompts={"doc": "a "}, default_prompt_name="doc")
    assert emb.prompts == {"query": "query: ", "document": "", "doc": "a "}  # placeholders, saved, given
    np.testing.assert_array_equal(emb.encode("the man"), emb.encode("a the man", prompt=""))
    tok = emb.tokenizer  # no tokenizer_config.json: the special tokens are named from the vocabulary
    assert tok.cls_token == "[CLS]" and tok.pad_token_id == 0
    assert tok.decode(tok("the man")["input_ids"]) == "[CLS] the man [SEP]"
    assert tok(["the", "the man"], padding=True)["attention_mask"] == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert json.dumps(emb.tokenize(["the"])["input_ids"].tolist()) == "[[2, 4, 3]]"
    with pytest.raises(ConfigError, match=r"Embedder\('fake-model', max_length=64\)"):
        emb.max_seq_length = 64
    assert emb.encode("the", prompt_name="document").shape == (4,)  # a placeholder, as in sentence-transformers
    emb.sequences(["the"], "query")  # the server (TEI) takes the prompts the model defines, not the placeholders
    with pytest.raises(ValueError, match=r"prompt_name 'document' not found; the model defines \['doc', 'query'\]"):
        emb.sequences(["the"], "document")
