"""QdrantSink: engine embed straight into a collection of a Qdrant local-mode folder (OUTPUT, opened with
QdrantClient(path=OUTPUT); no server), --qdrant-collection naming the collection.

Points are upserted by id, one window at a time, so a part redone after a crash or kill -9 overwrites the points an
earlier attempt left instead of adding them again: every id is in the collection once. The ledger and _SUCCESS live
in a hidden folder inside OUTPUT beside Qdrant's own files (OUTPUT/.NAME.engine-embed-qdrant; Qdrant reads only
meta.json and collection/); only _SUCCESS says the collection is complete, written after checking that it holds
exactly the points the parts' ledger records list, each once (their count, and the digest of the original ids kept in
the payload). The job's mark (lance_owner.job_mark) is stored in the collection's own metadata, with the parts'
metadata: a collection without it is never deleted by --overwrite nor written by a resume. Local mode locks the
folder for one client at a time: the sink holds it from claim() to close(), and a second writer is refused at once.
qdrant_client is imported only here, on first use (engine embed without --qdrant-collection never loads it).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from export.paths import check_output_path

from ...errors import OutputError
from ...extras import require
from ..input import InputFile
from ..job import EmbedJob
from ..ledger import LEDGER, SUCCESS, Ledger, read_job
from .folder import exclude_output
from .lance import written, written_ids
from .lance_ids import add_digests, ids_digest
from .lance_owner import MARK_KEY, job_mark
from .parts import METADATA_KEY, schema_ranges
from .qdrant_points import (DENSE, SPARSE, check_id_type, collection_config, config_diff, point_id, to_points,
                            vectors_found, vectors_wanted)

MARK = MARK_KEY.decode()  # the collection metadata key of the job's mark
META = METADATA_KEY.decode()  # the collection metadata key of the parts' metadata (model, pooling, ...)
QDRANT_FILES = ("meta.json", ".lock", "collection")  # what a Qdrant local-mode folder holds
SCROLL_PAGE = 10_000


class QdrantSink:
    """One collection of the Qdrant local-mode folder job.output, with its ledger in a hidden folder inside it."""

    def __init__(self, job: EmbedJob) -> None:
        self.path = Path(job.output)
        self.name = job.qdrant_collection
        self.state = self.path / f".{self.name}.engine-embed-qdrant"
        self.label = f"Qdrant collection {self.name!r} in {self.path}"
        self.id_column = job.id_column
        self._client = None
        self._models = None
        self._mark: str | None = None  # the job's mark, once read from the ledger

    @property
    def models(self):
        if self._models is None:
            self._models = require("qdrant_client.models", "qdrant", "engine embed --qdrant-collection")
        return self._models

    @property
    def client(self):
        """The local-mode client, opened once (it holds the folder's lock until close())."""
        if self._client is None:
            qdrant = require("qdrant_client", "qdrant", "engine embed --qdrant-collection")
            try:  # the writer thread upserts, the main thread checks and finishes: never at the same time
                self._client = qdrant.QdrantClient(path=str(self.path), force_disable_check_same_thread=True)
            except RuntimeError as err:
                if "already accessed" not in str(err):
                    raise
                raise OutputError(f"{self.path} is open in another Qdrant client (another engine embed, or a program "
                                  "holding QdrantClient(path=...) on it): local mode allows one client at a time. "
                                  "Wait for it to finish or close that client, then rerun; for concurrent access, "
                                  "run a Qdrant server") from None
        return self._client

    def close(self) -> None:
        """Release the folder's lock (the end of a run, or a refusal)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def exists(self) -> bool:
        return self.client.collection_exists(self.name)

    def claim(self, spec: str, files: list[InputFile], overwrite: bool) -> list[InputFile]:
        """The input files outside OUTPUT; refuse an unsafe OUTPUT, a folder that is not Qdrant's, or a collection
        engine embed did not write; with overwrite, delete the collection an earlier engine embed wrote, proved by
        the mark in its metadata (its _SUCCESS first, so no kill leaves a collection that looks complete)."""
        files = exclude_output(spec, files, self.path)
        check_output_path(self.path, reads=[f.path for f in files], what="OUTPUT", error=OutputError)
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.path} is a file; OUTPUT must be a Qdrant local-mode folder (or a new one)")
        if self.path.is_dir() and not (self.path / "meta.json").is_file():
            foreign = sorted(p.name for p in self.path.iterdir() if p.name not in QDRANT_FILES and p != self.state)
            if foreign:
                raise OutputError(f"{self.path} holds {', '.join(foreign[:3])} but no Qdrant storage (meta.json); "
                                  "OUTPUT must be a Qdrant local-mode folder (QdrantClient(path=...)) or a new one")
        exists = self.exists()  # opens (or creates) the folder, and takes its lock until close()
        ledger = (self.state / LEDGER).is_file()
        if not ledger and exists:
            raise OutputError(f"collection {self.name!r} in {self.path} was not written by engine embed; choose "
                              "another --qdrant-collection (--overwrite only replaces a collection engine embed wrote)")
        if overwrite and self.state.exists():
            if ledger:
                Ledger(self.state).close()  # raises if another run holds the lock
            if exists and self._found_mark() != job_mark(read_job(self.state)):
                raise OutputError(self._not_ours(None))
            (self.state / SUCCESS).unlink(missing_ok=True)
            if exists:
                self.client.delete_collection(self.name)
            shutil.rmtree(self.state)
        return files

    def _found_mark(self) -> str | None:
        return (self.client.get_collection(self.name).config.metadata or {}).get(MARK)

    def _not_ours(self, diff: list[str] | None) -> str:
        differs = f"; its vectors differ from the job's ({'; '.join(diff)})" if diff else ""
        return (f"{self.label} is not the collection engine embed wrote for the job in {self.state / LEDGER} (its "
                f"metadata carries no mark of that job: it was replaced or recreated since){differs}; nothing was "
                "written to it. Choose another --qdrant-collection, or delete that collection yourself (--overwrite "
                "only replaces a collection engine embed wrote)")

    def check_resume(self, ledger: Ledger, schema: pa.Schema | None) -> None:
        """Before anything is written: refuse a collection this job did not write (no mark of the job's ledger
        record), one whose vectors are no longer the job's (schema: the job's part schema, None before the scan), or
        a missing collection the ledger says points were written into."""
        if schema is not None:
            check_id_type(schema)
        if not self.exists():
            if written(ledger):
                raise OutputError(f"{self.label} was deleted since this job wrote {written(ledger)} points into it "
                                  f"(recorded in {self.state / LEDGER}); rerun with --overwrite to start over, or "
                                  "choose another --qdrant-collection")
            return
        diff = self._diff(schema) if schema is not None else []
        mark = job_mark(ledger.job)
        if mark is None or self._found_mark() != mark:
            raise OutputError(self._not_ours(diff))
        if diff:
            raise OutputError(f"{self.label} does not have the vectors this job writes ({'; '.join(diff)}); nothing "
                              "was written to it. Rerun with --overwrite to rebuild it, or choose another "
                              "--qdrant-collection")

    def _diff(self, schema: pa.Schema) -> list[str]:
        return config_diff(vectors_found(self.client.get_collection(self.name)), vectors_wanted(schema))

    def collection(self, schema: pa.Schema) -> str:
        """The collection's name, the collection created on first use with the job's vectors, mark and part
        metadata; one without the mark (someone else's, put in place meanwhile) or other vectors is refused."""
        if self._mark is None:  # the job record never changes once written: read it once
            self._mark = job_mark(read_job(self.state))
            if self._mark is None:
                raise OutputError(f"{self.state / LEDGER} holds no job record; rerun the same command")
        check_id_type(schema)
        if not self.exists():
            meta = json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))
            self.client.create_collection(self.name, **collection_config(self.models, schema),
                                          metadata={MARK: self._mark, META: meta})
        if self._found_mark() != self._mark:
            raise OutputError(self._not_ours(self._diff(schema)))
        diff = self._diff(schema)
        if diff:
            raise OutputError(f"{self.label} does not have the vectors this job writes ({'; '.join(diff)}); rerun with "
                              "--overwrite to rebuild it")
        return self.name

    def open_part(self, index: int, schema: pa.Schema) -> "QdrantPart":
        return QdrantPart(self, self.collection(schema))

    def upsert(self, rows: pa.Table) -> None:
        self.client.upsert(self.name, points=to_points(self.models, rows, self.id_column), wait=True)

    def read_ids(self) -> tuple[pa.Array, int]:
        """The original ids of every point (from the payload) and how many points' ids are not their point_id
        (changed since by something other than this job)."""
        ids, wrong, offset = [], 0, None
        while True:
            page, offset = self.client.scroll(self.name, limit=SCROLL_PAGE, offset=offset, with_payload=["id"],
                                              with_vectors=False)
            for record in page:
                original = (record.payload or {}).get("id")
                wrong += original is None or point_id(original) != record.id
                ids.append(original)
            if offset is None:
                break
        return _id_array(ids, wrong)

    def damaged(self, ledger: Ledger) -> list[str]:
        """What a finished collection lacks: the collection, points, or ids (it was changed since)."""
        if not self.exists():
            return [f"collection {self.name!r}"]
        expected, have = written(ledger), self.client.count(self.name, exact=True).count
        if have != expected:
            return [f"{expected} points ({have} found)"]
        wanted = written_ids(ledger)
        if wanted is not None and have:
            ids, wrong = self.read_ids()
            if wrong or ids_digest(ids) != wanted:
                return ["the ids the parts wrote (changed in place since)"]
        return []

    def finish(self, plan, ledger: Ledger, ranges: NDArray[np.float32] | None, progress) -> dict:
        """Check that the collection holds every written point exactly once, with the ids the parts wrote. Returns
        the _SUCCESS fields and, under 'notes', a line for the summary."""
        schema = plan.part_schema(schema_ranges(plan, ranges))
        self.collection(schema)  # none written: an empty collection with the job's vectors
        expected, have = written(ledger), self.client.count(self.name, exact=True).count
        ids, wrong = self.read_ids()
        distinct = pc.count_distinct(ids).as_py() if len(ids) else 0
        if have != expected or distinct != have or wrong:
            raise OutputError(f"{self.label} holds {have} points ({distinct} distinct ids, {wrong} whose point id is "
                              f"not that of the 'id' in their payload) but the finished parts wrote {expected}: "
                              "something other than this job changed it; rerun with --overwrite to rebuild it")
        digest, wanted = ids_digest(ids), written_ids(ledger)
        if wanted is not None and digest != wanted:
            raise OutputError(f"{self.label}: its ids are not those the finished parts wrote (the same {have} points, "
                              "but their id digest differs from the parts' in the ledger): something other than this "
                              "job changed them; rerun with --overwrite to rebuild it")
        vectors = vectors_wanted(schema)
        names = [f"{n} ({v['size']}, cosine)" for n, v in vectors["dense"].items()] + vectors["sparse"]
        using = DENSE if vectors["dense"] else SPARSE
        note = (f"qdrant: {have:,} points, vectors {', '.join(names)}; search with "
                f"QdrantClient(path={str(self.path)!r}).query_points({self.name!r}, query=..., using={using!r})")
        return {"collection": self.name, "qdrant_path": str(self.path), "ids": digest, "vectors": vectors,
                "notes": [note]}


def _id_array(ids: list, wrong: int) -> tuple[pa.Array, int]:
    """The original ids as an Arrow array whose ids_digest is the one the parts recorded (integers hash by their
    64-bit value, strings by their bytes), and the count of bad ones (a payload without an id counts as one)."""
    if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return pa.array(ids, type=pa.uint64() if any(i >= 2**63 for i in ids) else pa.int64()), wrong
    if all(isinstance(i, str) for i in ids):
        return pa.array(ids, type=pa.large_string()), wrong
    return pa.array([str(i) for i in ids], type=pa.large_string()), max(wrong, 1)


class QdrantPart:
    """Upsert one part's rows by id; nothing to commit or abort (a redone part upserts the same ids again).
    commit() hands the digest of the part's ids to its ledger record, for the finishing check."""

    def __init__(self, sink: QdrantSink, collection: str) -> None:
        self.sink, self.collection = sink, collection
        self.ids: list[dict] = []

    def write(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self.sink.upsert(rows)
            self.ids.append(ids_digest(rows.column("id")))

    def commit(self) -> tuple[None, int, dict]:
        return None, 0, {"ids": add_digests(self.ids)}

    def abort(self) -> None:
        return None
