"""engine inspect: parity of hidden states / attentions with transformers (eager), the analyses, bad input, the CLI."""
from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from engine.inspect.attention_table import format_table, top_attended
from engine.inspect.drift import layer_drift
from engine.errors import InputError
from engine.inspect.heatmap_png import heatmap_png
from engine.inspect.selection import select_indices, special_tokens
from engine.runtime.introspect import Inspection

CHAPTER = "Then I tried to find some way of embracing my mother's ghost."
ATTN_TOL = 1e-5
HIDDEN_TOL = 2e-4


@pytest.fixture(scope="module")
def texts(real_texts) -> list[str]:
    """The chapter's sentence, a very short text and real paragraphs of varied length, all within max_length."""
    picked = [t for t in real_texts if 200 < len(t) < 900][:6]
    return [CHAPTER, "Hello there."] + picked


@pytest.fixture(scope="module")
def inspection(embedder, texts) -> Inspection:
    return embedder.inspect(texts)


@pytest.fixture(scope="module")
def reference(minilm_path, texts):
    """transformers eager run of the same texts as one padded batch: (hidden (L+1,B,T,H), attn (L,B,heads,T,T), mask, ids)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path, attn_implementation="eager", dtype=torch.float32).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True, output_attentions=True)
    hidden = torch.stack(out.hidden_states).numpy()
    attn = torch.stack(out.attentions).numpy()
    return hidden, attn, enc["attention_mask"].numpy(), enc["input_ids"].numpy(), tok


def test_batch_was_padded(reference, texts):
    _, _, mask, _, _ = reference
    lengths = mask.sum(1)
    assert lengths.min() < lengths.max() // 4, "texts should differ in length so padding is exercised"


def test_tokens_and_shapes(inspection, reference, texts):
    _, _, mask, ids, tok = reference
    assert len(inspection.tokens) == len(texts)
    for i in range(len(texts)):
        t = int(mask[i].sum())
        assert inspection.tokens[i] == tok.convert_ids_to_tokens(ids[i, :t].tolist())
        assert inspection.hidden_states[i].shape == (7, t, 384)
        assert inspection.attentions[i].shape == (6, 12, t, t)
        assert inspection.hidden_states[i].dtype == np.float32
    assert inspection.tokens[0][:3] == ["[CLS]", "then", "i"] and inspection.tokens[0][-1] == "[SEP]"
    assert inspection.attention_mask.shape == (len(texts), int(mask.sum(1).max()))
    np.testing.assert_array_equal(inspection.attention_mask.sum(1), mask.sum(1))
    assert not inspection.truncated.any()


def test_attentions_match_transformers(inspection, reference, texts):
    _, attn, mask, _, _ = reference
    worst = 0.0
    for i in range(len(texts)):
        t = int(mask[i].sum())
        worst = max(worst, float(np.abs(inspection.attentions[i] - attn[:, i, :, :t, :t]).max()))
    assert worst <= ATTN_TOL, f"attentions differ from transformers eager by {worst:.3g} (limit {ATTN_TOL})"


def test_hidden_states_match_transformers(inspection, reference, texts):
    hidden, _, mask, _, _ = reference
    worst = 0.0
    for i in range(len(texts)):
        t = int(mask[i].sum())
        worst = max(worst, float(np.abs(inspection.hidden_states[i] - hidden[:, i, :t]).max()))
    assert worst <= HIDDEN_TOL, f"hidden states differ from transformers eager by {worst:.3g} (limit {HIDDEN_TOL})"


def test_rows_sum_to_one(inspection):
    for a in inspection.attentions:
        np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-5)
        assert (a >= 0).all()


def test_padded_layout(inspection):
    hidden, attn = inspection.padded()
    n, t = inspection.attention_mask.shape
    assert hidden.shape == (7, n, t, 384) and attn.shape == (6, n, 12, t, t)
    for i, k in enumerate(inspection.lengths):
        np.testing.assert_array_equal(attn[:, i, :, :k, :k], inspection.attentions[i])
        assert not attn[:, i, :, k:].any() and not hidden[:, i, k:].any()
        # padded rows of the batch-shaped array still sum to 1 over the valid tokens
        np.testing.assert_allclose(attn[:, i, :, :k].sum(-1), 1.0, atol=1e-5)


def test_single_string_and_order(embedder, inspection, texts):
    alone = embedder.inspect(texts[2])
    assert alone.tokens == [inspection.tokens[2]]
    np.testing.assert_allclose(alone.attentions[0], inspection.attentions[2], atol=1e-6)


@pytest.mark.parametrize("ignore_special", [False, True])
def test_top_attended_matches_numpy(inspection, reference, texts, ignore_special):
    """Each token's target = argmax over keys of (max over heads), computed directly on transformers' attentions."""
    _, attn, mask, _, _ = reference
    specials = {"[CLS]", "[SEP]"} if ignore_special else set()
    for i in range(len(texts)):
        t = int(mask[i].sum())
        tokens = inspection.tokens[i]
        rows = top_attended(tokens, inspection.attentions[i], ignore=specials, text=i)
        keep = [j for j, s in enumerate(tokens) if s not in specials]
        assert len(rows) == 6 * len(keep)
        got = {(r.layer, r.position): r for r in rows}
        for layer in range(6):
            score = attn[layer, i, :, :t, :t].max(0)  # (t, t)
            for q in keep:
                cand = score[q, keep]
                order = np.argsort(-cand)
                r = got[(layer, q)]
                assert r.token == tokens[q] and r.target == tokens[r.target_position]
                assert r.weight == pytest.approx(float(cand[order[0]]), abs=ATTN_TOL)
                if cand[order[0]] - cand[order[1]] > 1e-4:  # a clear winner: same token
                    assert r.target_position == keep[order[0]]
                assert inspection.attentions[i][layer, r.head, q, r.target_position] == pytest.approx(r.weight)


def test_top_attended_selection_and_format(inspection):
    tokens, a = inspection.tokens[0], inspection.attentions[0]
    rows = top_attended(tokens, a, layers=[0, 5], heads=[2], ignore={"[CLS]", "[SEP]"})
    assert {r.layer for r in rows} == {0, 5} and {r.head for r in rows} == {2}
    text = format_table(rows)
    assert "layer 0" in text and "layer 5" in text and "embracing" in text
    md = format_table(rows, markdown=True)
    assert md.splitlines()[0].startswith("| token | layer 0 | layer 5 |")


def test_drift_matches_numpy(inspection, reference, texts):
    hidden, _, mask, _, _ = reference
    m = mask[None, :, :, None].astype(np.float64)
    pooled = (hidden.astype(np.float64) * m).sum(2) / m.sum(2)  # (L+1, B, H)

    def cos(a, b):
        return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))

    want_to0 = cos(pooled[1:], pooled[:1]).T  # (B, L)
    want_prev = cos(pooled[1:], pooled[:-1]).T
    want_cls = cos(hidden[0, :, 0].astype(np.float64), hidden[-1, :, 0].astype(np.float64))
    drift = layer_drift(inspection.hidden_states)
    np.testing.assert_allclose(drift.to_layer0, want_to0, atol=1e-5)
    np.testing.assert_allclose(drift.to_previous, want_prev, atol=1e-5)
    np.testing.assert_allclose(drift.cls_static_dynamic, want_cls, atol=1e-5)
    np.testing.assert_array_equal(drift.tokens, mask.sum(1))
    s = drift.summary()
    assert s["texts"] == len(texts) and len(s["to_layer0_mean"]) == 6
    assert s["cls_static_dynamic"]["mean"] == pytest.approx(float(want_cls.mean()), abs=1e-5)
    assert s["cls_static_dynamic"]["min"] <= s["cls_static_dynamic"]["median"] <= s["cls_static_dynamic"]["max"]


# ---------------------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("bad", [[""], ["fine", "   "], []])
def test_empty_text_is_refused(embedder, bad):
    with pytest.raises(InputError, match="empty|no text"):
        embedder.inspect(bad)


def test_non_string_is_refused(embedder):
    with pytest.raises(TypeError, match="texts\\[1\\]"):
        embedder.inspect(["fine", None])


def test_long_text_is_truncated_with_warning(embedder, real_texts):
    long_text = " ".join(real_texts[:40])
    with pytest.warns(UserWarning, match="truncated to 256"):
        ins = embedder.inspect([CHAPTER, long_text])
    assert ins.lengths[1] == 256 and ins.tokens[1][-1] == "[SEP]"
    assert ins.truncated.tolist() == [False, True]
    np.testing.assert_allclose(ins.attentions[1].sum(-1), 1.0, atol=1e-5)


def test_no_warning_without_truncation(embedder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embedder.inspect([CHAPTER])


@pytest.mark.parametrize("spec, count, what", [("6", 6, "layer"), ("0,7", 6, "layer"), ("12", 12, "head"), ("3-12", 12, "head")])
def test_out_of_range_selection_names_range(spec, count, what):
    with pytest.raises(InputError, match=rf"{what} \d+ is out of range.*0\.\.{count - 1}"):
        select_indices(spec, count, what)


def test_selection_parsing():
    assert select_indices("all", 6, "layer") == [0, 1, 2, 3, 4, 5]
    assert select_indices("last", 6, "layer") == [5]
    assert select_indices("0,2-4,2", 6, "layer") == [0, 2, 3, 4]
    assert select_indices(None, 3, "head") == [0, 1, 2]
    with pytest.raises(InputError, match="not understood"):
        select_indices("x", 6, "layer")


def test_analyses_check_ranges(inspection, tmp_path):
    tokens, a = inspection.tokens[0], inspection.attentions[0]
    with pytest.raises(InputError, match=r"layer 6 is out of range.*0\.\.5"):
        top_attended(tokens, a, layers=[6])
    with pytest.raises(InputError, match=r"head 12 is out of range.*0\.\.11"):
        top_attended(tokens, a, heads=[12])
    with pytest.raises(InputError, match=r"layer 9 is out of range.*0\.\.5"):
        heatmap_png(tokens, a, 9, tmp_path / "x.png")
    with pytest.raises(InputError, match=r"head 12 is out of range.*0\.\.11"):
        heatmap_png(tokens, a, 0, tmp_path / "x.png", heads=[12])


def test_special_tokens(embedder):
    assert special_tokens(embedder.rust_tokenizer) == {"[CLS]", "[SEP]"}


# ---------------------------------------------------------------------------------------------------------------------
# arrays for bertviz / circuitsvis


def test_saved_arrays_layout(inspection, texts, tmp_path):
    from engine.inspect.outputs import save_arrays

    paths = save_arrays(inspection, texts[:2], tmp_path)
    z = np.load(paths[0])  # no pickle needed
    assert set(z.files) == {"attentions", "hidden_states", "tokens", "input_ids", "text"}
    np.testing.assert_array_equal(z["attentions"], inspection.attentions[0])
    np.testing.assert_array_equal(z["hidden_states"], inspection.hidden_states[0])
    assert z["tokens"].tolist() == inspection.tokens[0] and str(z["text"]) == CHAPTER


def test_arrays_load_in_bertviz_and_circuitsvis(inspection, texts, tmp_path):
    bertviz = pytest.importorskip("bertviz", reason="bertviz not installed (pip install bertviz)")
    circuitsvis = pytest.importorskip("circuitsvis", reason="circuitsvis not installed (pip install circuitsvis)")
    import torch

    from engine.inspect.outputs import save_arrays

    z = np.load(save_arrays(inspection, texts[:1], tmp_path)[0])
    page = bertviz.head_view([torch.from_numpy(a[None]) for a in z["attentions"]], z["tokens"].tolist(), html_action="return")
    assert "embracing" in page.data
    html = str(circuitsvis.attention.attention_heads(attention=z["attentions"][0], tokens=z["tokens"].tolist()))
    assert "AttentionHeads" in html and "embracing" in html


# ---------------------------------------------------------------------------------------------------------------------
# CLI


def _run(args):
    from engine.cli import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_cli_writes_everything(minilm_export, real_texts, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(real_texts[:30]) + "\n\n")
    out = tmp_path / "out"
    result = _run(["inspect", CHAPTER, "Hello there.", "--model", str(minilm_export), "--out", str(out), "--layers", "0,5",
                   "--heads", "0-3", "--ignore-special", "--corpus", str(corpus), "--save-arrays", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert names == {
        "attention.html", "top_attended.csv", "arrays/text0.npz", "arrays/text1.npz",
        "attention_text0_layer0.png", "attention_text0_layer5.png", "attention_text1_layer0.png", "attention_text1_layer5.png",
        "drift.csv", "drift_cls.csv", "drift_summary.json", "drift_to_layer0.png", "drift_to_previous.png",
    }
    table = result.stdout.split("layer drift over")[0]
    assert "embracing" in table and "layer 5" in table and "[CLS]" not in table  # --ignore-special
    assert "static vs dynamic [CLS] cosine" in result.stdout
    with (out / "top_attended.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["layer"] for r in rows} == {"0", "5"} and {int(r["head"]) for r in rows} <= {0, 1, 2, 3}
    assert len(rows) == 2 * (15 + 3)  # 2 layers x (15 + 3 word pieces without [CLS]/[SEP])
    summary = json.loads((out / "drift_summary.json").read_text())
    assert summary["texts"] == 30
    with (out / "drift.csv").open() as fh:
        assert sum(1 for _ in fh) == 1 + 30 * 6
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_corpus_only_jsonl(minilm_export, real_texts, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(real_texts[:5])))
    out = tmp_path / "o"
    result = _run(["inspect", "--corpus", str(corpus), "--model", str(minilm_export), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (out / "drift_to_layer0.png").is_file() and not (out / "attention.html").exists()


def test_cli_layer_out_of_range(minilm_export, tmp_path):
    result = _run(["inspect", CHAPTER, "--model", str(minilm_export), "--out", str(tmp_path), "--layers", "6", "--device", "cpu"])
    assert result.exit_code == 1
    assert "layer 6 is out of range" in result.output and "0..5" in result.output


def test_cli_head_out_of_range(minilm_export, tmp_path):
    result = _run(["inspect", CHAPTER, "--model", str(minilm_export), "--out", str(tmp_path), "--heads", "12", "--device", "cpu"])
    assert result.exit_code == 1 and "head 12 is out of range" in result.output and "0..11" in result.output


def test_cli_empty_text(minilm_export, tmp_path):
    result = _run(["inspect", "", "--model", str(minilm_export), "--out", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 1 and "empty" in result.output


def test_cli_truncation_warning(minilm_export, real_texts, tmp_path):
    result = _run(["inspect", " ".join(real_texts[:40]), "--model", str(minilm_export), "--out", str(tmp_path),
                   "--layers", "last", "--device", "cpu"])
    assert result.exit_code == 0 and "warning:" in result.stderr and "truncated to 256" in result.stderr


def test_cli_needs_text_or_corpus():
    result = _run(["inspect"])
    assert result.exit_code == 2 and "TEXT" in result.output


def test_cli_bad_corpus(minilm_export, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    result = _run(["inspect", "--corpus", str(bad), "--model", str(minilm_export), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "bad.jsonl:2" in result.output


def test_cli_rerun_replaces_stale_outputs_and_refuses_foreign_folders(minilm_export, tmp_path):
    out = tmp_path / "out"
    first = _run(["inspect", CHAPTER, "--model", str(minilm_export), "--out", str(out), "--layers", "0,5", "--device", "cpu"])
    assert first.exit_code == 0, first.output
    assert {p.name for p in out.glob("*.png")} == {"attention_text0_layer0.png", "attention_text0_layer5.png"}
    again = _run(["inspect", "Hello there.", "--model", str(minilm_export), "--out", str(out), "--layers", "2",
                  "--device", "cpu"])
    assert again.exit_code == 0, again.output
    assert {p.name for p in out.glob("*.png")} == {"attention_text0_layer2.png"}  # no stale layer 0 / 5 pictures
    assert "Hello" in (out / "attention.html").read_text() and "embracing" not in (out / "attention.html").read_text()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused = _run(["inspect", CHAPTER, "--model", str(minilm_export), "--out", str(foreign), "--device", "cpu"])
    assert refused.exit_code == 1 and "not written by engine inspect" in refused.output and "notes.txt" in refused.output
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_png_has_every_selected_head_in_its_own_panel(inspection, tmp_path):
    """The tiled PNG: panel k shows head k's weights on the shared Blues scale (dark where the weight is 1)."""
    from PIL import Image

    from engine.inspect.heatmap_png import colorize

    tokens, att = inspection.tokens[0], inspection.attentions[0]
    path = heatmap_png(tokens, att, 0, tmp_path / "l0.png", heads=[2])  # layer 0 head 2: previous-token head
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    darkest = colorize(np.array(1.0))
    hits = np.all(np.abs(img - darkest) <= 3, axis=-1)
    strong = int((att[0, 2] > 0.97).sum())
    assert strong >= len(tokens) - 2 and hits.sum() >= strong * 4  # each near-1 cell is a dark block of pixels
