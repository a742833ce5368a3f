"""OutputPlan: everything an embed job decides before embedding: input files, identity, schema, part metadata.

The identity is computed from the export's manifest and the job's options, never from a loaded Embedder, so a
mismatched resume is refused before any session is opened.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from export import __version__
from export.manifest import manifest_hash

from ..runtime.backends.choice import choose_backend
from .input import InputFile
from .job import EmbedJob
from .ledger import LEDGER_VERSION, fingerprint
from .output.parts import output_schema, score_schema
from .output.sparse_column import sparse_field
from .output.sinks import Sink, open_sink

ENGINE_VERSION = __version__  # recorded in every output part and in _SUCCESS


@dataclass(frozen=True)
class OutputPlan:
    """One job's resolved plan. columns (the id and kept columns' types) and total_rows are set after the scan."""

    job: EmbedJob
    out: Path
    files: list[InputFile]
    manifest: dict
    max_length: int
    identity: dict
    backend: dict  # BackendChoice.record(): which backend runs the export at which precision, and why
    sink: Sink  # where the rows go; out is its state folder (the ledger and _SUCCESS)
    columns: pa.Schema | None = None
    total_rows: int = 0
    sparse_manifest: dict | None = None  # --sparse-model's export manifest (task "embed" with a sparse column)

    @classmethod
    def build(cls, job: EmbedJob, sink: Sink, files: list[InputFile], manifest: dict,
              sparse_manifest: dict | None = None) -> "OutputPlan":
        max_length = job.embedder.max_length or int(manifest["max_length"])
        cfg = job.embedder
        backend = choose_backend(cfg.backend, cfg.device, manifest["precision"]).record()
        identity = job_identity(job, manifest, max_length, files, backend) | sparse_identity(job, manifest, sparse_manifest, backend)
        return cls(job=job, out=sink.state, files=files, manifest=manifest, max_length=max_length, identity=identity,
                   backend=backend, sink=sink, sparse_manifest=sparse_manifest)

    def scanned(self, columns: pa.Schema, total_rows: int) -> "OutputPlan":
        return dataclasses.replace(self, columns=columns, total_rows=total_rows)

    def absolute(self) -> "OutputPlan":
        """This plan with absolute input, output and model paths, as every Ray worker must see them."""
        files = [dataclasses.replace(f, path=f.path.resolve()) for f in self.files]
        cfg = self.job.embedder
        job = dataclasses.replace(self.job, output=str(Path(self.job.output).resolve()),
                                  embedder=dataclasses.replace(cfg, model=str(Path(cfg.model).resolve())))
        return dataclasses.replace(self, job=job, out=self.out.resolve(), sink=open_sink(job), files=files)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.identity)

    @property
    def dim(self) -> int:
        """The embedding's dimension; for task "rerank", the score's labels."""
        if self.job.task == "rerank":
            return int(self.manifest.get("num_labels", 1))
        if self.job.task == "sparse":
            return int(self.manifest["vocab_size"])
        return int(self.manifest["embedding_dim"])

    @property
    def id_type(self) -> pa.DataType:
        return self.columns.field(self.job.id_column).type if self.job.id_column else pa.int64()

    @property
    def keep_schema(self) -> pa.Schema:
        return pa.schema([self.columns.field(c) for c in self.job.keep_columns])

    def part_schema(self, ranges: NDArray[np.float32] | None) -> pa.Schema:
        """The schema of every output part, metadata included."""
        if self.job.task == "rerank":
            return score_schema(self.id_type, self.keep_schema, self.dim, self.metadata(ranges))
        if self.job.task == "sparse":  # id, kept columns, sparse
            fields = [pa.field("id", self.id_type, nullable=False), *self.keep_schema, sparse_field()]
            return pa.schema(fields, metadata=output_schema(self.id_type, self.keep_schema, "float32", 1,
                                                            self.metadata(ranges)).metadata)
        schema = output_schema(self.id_type, self.keep_schema, self.job.dtype, self.dim, self.metadata(ranges))
        return schema.append(sparse_field()) if self.sparse_manifest is not None else schema

    def metadata(self, ranges: NDArray[np.float32] | None) -> dict:
        """The JSON metadata every output part carries: model, pooling, dtype and, for int8, the quantization ranges."""
        m, job = self.manifest, self.job
        if job.task == "rerank":
            return self._score_metadata()
        if job.task == "sparse":
            return self._sparse_metadata(m) | {"task": "sparse", "model": m["source"]["model"],
                                               "model_manifest_hash": self.identity["model_manifest_hash"],
                                               "engine_version": ENGINE_VERSION, "max_length": self.max_length,
                                               "text_column": job.text_column, "id": job.id_column or "row number"}
        meta = {
            "engine_version": ENGINE_VERSION,
            "model": m["source"]["model"],
            "model_manifest_hash": self.identity["model_manifest_hash"],
            "architecture": m["architecture"],
            "dim": self.dim,
            "dtype": job.dtype,
            "pooling": m["pooling"],
            "normalize": m["normalize"],
            "precision": m["precision"],
            "max_length": self.max_length,
            "long_text": self.identity["long_text"],
            "chunk_stride": self.identity["chunk_stride"],
            "text_column": job.text_column,
            "id": job.id_column or "row number",
        }
        if job.dtype == "int8":
            meta["int8"] = {"scheme": "sentence-transformers int8: q = floor((x - min) / ((max - min) / 255)) - 128, clipped",
                            "ranges": np.asarray(ranges).tolist()}
        if job.dtype == "ubinary":
            meta["ubinary"] = "numpy.packbits(x > 0) along the dimension (sentence-transformers 'ubinary'), big-endian bits"
        if self.sparse_manifest is not None:
            meta["sparse"] = self._sparse_metadata(self.sparse_manifest) | self.identity["sparse_model"]
        return meta

    def _sparse_metadata(self, m: dict) -> dict:
        """What the `sparse` column holds: the SPLADE model's vocabulary, pooling, kept dimensions, precision."""
        return {"column": "sparse: struct<indices: list<int32> ascending, values: list<float32>> (non-zero weights)",
                "side": "document", "vocab_size": int(m["vocab_size"]), "pooling": m.get("pooling"),
                "precision": m["precision"], "max_active_dims": active_dims(self.job, m),
                "architecture": m.get("architecture")}

    def _score_metadata(self) -> dict:
        """engine score's part metadata: the model, what the score is (activation or raw logits), the columns."""
        m, job = self.manifest, self.job
        return {
            "engine_version": ENGINE_VERSION,
            "task": "rerank",
            "model": m["source"]["model"],
            "model_manifest_hash": self.identity["model_manifest_hash"],
            "architecture": m.get("architecture"),
            "num_labels": self.dim,
            "score": "raw logits" if job.raw_scores else f"activation {m.get('activation', 'sigmoid')!r} of the logits",
            "precision": m["precision"],
            "max_length": self.max_length,
            "long_text": self.identity["long_text"],
            "chunk_stride": self.identity["chunk_stride"],
            "query_column": job.query_column,
            "text_column": job.text_column,
            "id": job.id_column or "row number",
        }


DIGEST_BLOCK = 256 * 1024


def content_digest(path: Path) -> str:
    """A cheap content fingerprint of one input file: its mtime (ns) and the sha256 of its first and last 256 KiB.

    Files up to 512 KiB are hashed whole, so any edit to them is caught. For larger files it catches a change of
    size, any edit in the first or last 256 KiB (a parquet file's footer, with its row-group statistics, is in the
    tail), and any write that updates the mtime, which is every ordinary one. It misses an edit in the middle of a
    large file whose mtime was then set back (touch -d, rsync -t of another file of the same size).
    """
    st = path.stat()
    digest = hashlib.sha256(str(st.st_mtime_ns).encode())
    with path.open("rb") as fh:
        if st.st_size <= 2 * DIGEST_BLOCK:
            digest.update(fh.read())
        else:
            digest.update(fh.read(DIGEST_BLOCK))
            fh.seek(-DIGEST_BLOCK, os.SEEK_END)
            digest.update(fh.read(DIGEST_BLOCK))
    return digest.hexdigest()[:32]


def job_identity(job: EmbedJob, manifest: dict, max_length: int, files: list[InputFile], backend: dict | None = None) -> dict:
    """Everything that decides which rows land in which part and what their vectors are (not device or batching).

    backend (BackendChoice.record()): a backend other than onnxruntime is part of it ("openvino bf16"), so a job
    resumed on another backend or precision is refused rather than mixing vectors; onnxruntime adds nothing, so the
    fingerprints of outputs begun before there was a choice stay what they were. Task "rerank" (engine score) adds
    the query column, raw_scores, the precision and the backend, whichever it is."""
    paths = [f.path.resolve() for f in files]
    root = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
    cfg = job.embedder
    return {
        "ledger_version": LEDGER_VERSION,
        "model_manifest_hash": manifest_hash(manifest),
        "model": manifest["source"]["model"],
        "max_length": max_length,
        "long_text": cfg.long_text,
        "chunk_stride": cfg.stride_for(max_length),
        "input": [[str(p.relative_to(root)), f.size, content_digest(p)] for p, f in zip(paths, files)],
        "text_column": job.text_column,
        "id_column": job.id_column,
        "keep_columns": list(job.keep_columns),
        "dtype": job.dtype,
        "on_bad_row": job.on_bad_row,
        "rows_per_part": job.rows_per_part,
    } | ({"backend": f"{backend['backend']} {backend['precision']}"} if backend and backend["backend"] != "onnxruntime" else {}) \
      | ({"task": "rerank", "query_column": job.query_column, "raw_scores": job.raw_scores,
          "precision": manifest["precision"]}
         | ({"backend": f"{backend['backend']} {backend['precision']}"} if backend else {})
         if job.task == "rerank" else {})


def active_dims(job: EmbedJob, sparse_manifest: dict) -> int | None:
    """The most non-zero dimensions kept per sparse vector: --max-active-dims, else the model's (None: all)."""
    return job.max_active_dims if job.max_active_dims is not None else sparse_manifest.get("max_active_dims")


def sparse_identity(job: EmbedJob, manifest: dict, sparse_manifest: dict | None, backend: dict) -> dict:
    """The fingerprint's sparse part: for task "sparse" the precision, backend and kept dimensions; with
    --sparse-model the same of the sparse model, under 'sparse_model'. Nothing for a dense-only job."""
    def of(m: dict) -> dict:
        chosen = backend if m is manifest else choose_backend(job.embedder.backend, job.embedder.device,
                                                              m["precision"]).record()
        return {"precision": m["precision"], "backend": f"{chosen['backend']} {chosen['precision']}",
                "max_active_dims": active_dims(job, m)}
    if job.task == "sparse":
        return {"task": "sparse"} | of(manifest)
    if sparse_manifest is None:
        return {}
    return {"sparse_model": {"model": sparse_manifest["source"]["model"],
                             "model_manifest_hash": manifest_hash(sparse_manifest),
                             "max_length": int(sparse_manifest["max_length"])} | of(sparse_manifest)}
