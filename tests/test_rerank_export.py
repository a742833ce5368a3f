"""engine export of cross-encoders: the CLI summary, the options a cross-encoder refuses, the saved activation, a
head whose weights are missing, and the score gate failing and passing as its thresholds say."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from engine import Reranker
from engine.cli import main
from export import ExportOptions, ParityError, export_model
from export.errors import ModelSourceError, OptionError


def test_cli_export_of_a_cross_encoder_prints_the_score_gate(tiny_cross_encoders, tmp_path):
    result = CliRunner().invoke(main, ["export", str(tiny_cross_encoders["bert"]), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "reranker num_labels=1 activation=sigmoid" in result.output
    assert "parity score/scores:" in result.output and "top10_order_kept=1.000" in result.output


def test_embedding_options_are_refused_for_a_cross_encoder(tiny_cross_encoders, tmp_path):
    result = CliRunner().invoke(main, ["export", str(tiny_cross_encoders["bert"]), str(tmp_path / "o"), "--pooling", "mean"])
    assert result.exit_code == 2 and "is a cross-encoder" in result.output and "--pooling" in result.output
    assert not (tmp_path / "o").exists()


def test_the_saved_activation_is_used(tiny_models, tmp_path, real_texts):
    import torch
    from sentence_transformers import CrossEncoder

    from benchmarks.random_cross_encoders import cross_encoder_from_encoder

    folder = cross_encoder_from_encoder(tiny_models["bert"], tmp_path / "ce-tanh", activation_fn=torch.nn.Tanh(), spread=30)
    export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "out")), log=lambda _m: None)
    rr = Reranker(tmp_path / "out", device="cpu")
    assert rr.activation == "tanh"
    pairs = [(real_texts[i], real_texts[i + 40]) for i in range(12)]
    assert np.abs(rr.predict(pairs) - CrossEncoder(str(folder), device="cpu").predict(pairs)).max() <= 1e-4
    st = folder / "config_sentence_transformers.json"
    st.write_text(json.dumps(json.loads(st.read_text()) | {"activation_fn": "torch.nn.modules.activation.ReLU"}))
    with pytest.raises(OptionError, match="ReLU.*not supported"):
        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "relu")), log=lambda _m: None)


def test_a_chat_template_reranker_is_refused(tiny_cross_encoders, tmp_path):
    """Without a saved modality_config, CrossEncoder renders pairs through a chat template as query/document messages
    (the runtime would not); a saved text-only modality_config keeps it off, and that folder still exports."""
    import shutil

    from sentence_transformers import CrossEncoder

    folder = tmp_path / "qwen3-chat"
    shutil.copytree(tiny_cross_encoders["qwen3"], folder)
    (folder / "modules.json").unlink()
    (folder / "sentence_bert_config.json").unlink()
    template = ("<|im_start|>user\n<Query>: {{ messages | selectattr('role', 'eq', 'query') | map(attribute='content') | first }}"
                "\n<Document>: {{ messages | selectattr('role', 'eq', 'document') | map(attribute='content') | first }}<|im_end|>\n")
    (folder / "chat_template.jinja").write_text(template)
    assert "message" in CrossEncoder(str(folder), device="cpu")[0].modality_config  # sentence-transformers uses it
    with pytest.raises(OptionError, match="through the chat template .*chat_template.jinja"):
        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "out")), log=lambda _m: None)
    assert not (tmp_path / "out").exists()
    saved = tmp_path / "qwen3-saved"
    shutil.copytree(tiny_cross_encoders["qwen3"], saved)
    shutil.copy(folder / "chat_template.jinja", saved)
    assert "message" not in CrossEncoder(str(saved), device="cpu")[0].modality_config
    export_model(ExportOptions(model=str(saved), out_dir=str(tmp_path / "ok")), log=lambda _m: None)


def test_a_classification_head_without_weights_is_refused(tiny_models, tmp_path):
    import shutil

    folder = tmp_path / "no-head"
    shutil.copytree(tiny_models["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"architectures": ["BertForSequenceClassification"]}))
    with pytest.raises(ModelSourceError, match="lacks .* weights"):
        export_model(ExportOptions(model=str(folder), out_dir=str(tmp_path / "out")), log=lambda _m: None)


def test_int8_score_gate_fails_and_passes_by_its_threshold(tiny_cross_encoders, tmp_path):
    folder = str(tiny_cross_encoders["bert"])
    manifest = export_model(ExportOptions(model=folder, out_dir=str(tmp_path / "loose"), precision="int8", min_overlap=0.0),
                            log=lambda _m: None)
    gate = manifest["parity"]["score"]["outputs"]["scores"]
    assert manifest["valid"] and manifest["parity"]["score"]["thresholds"]["atol"] is None and gate["max_abs"] > 0
    if gate["top_k_overlap"] < 1.0:  # a bar above what int8 kept must fail, and mark the export invalid
        with pytest.raises(ParityError, match="top-10 overlap"):
            export_model(ExportOptions(model=folder, out_dir=str(tmp_path / "strict"), precision="int8",
                                       min_overlap=min(1.0, gate["top_k_overlap"] + 0.01)), log=lambda _m: None)
        assert not json.loads((tmp_path / "strict" / "manifest.json").read_text())["valid"]
    with pytest.raises(ParityError, match="max abs diff"):
        export_model(ExportOptions(model=folder, out_dir=str(tmp_path / "atol"), precision="int8", atol=1e-9,
                                   min_overlap=0.0), log=lambda _m: None)
