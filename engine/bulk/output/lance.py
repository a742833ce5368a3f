"""LanceSink: engine embed straight into a LanceDB table (OUTPUT is the database folder, --lancedb-table the table).

Rows are upserted by id (merge_insert on the id column), one window at a time, so a part redone after a crash or
kill -9 replaces the rows an earlier attempt left instead of adding them again: every id is in the table once. The
ledger and _SUCCESS live in a hidden folder beside the table (DB/.NAME.engine-embed), which LanceDB does not list as a
table; only _SUCCESS says the table is complete, and it is written after the table was checked (every written row
there exactly once, its ids those the parts' ledger records list), compacted and, with --index, indexed. The table
has the parquet output's schema, metadata included, plus the job's mark (lance_owner.py): a table without it is never
dropped by --overwrite nor written by a resume.
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
from .lance_ids import add_digests, ids_digest
from .lance_index import build_index, index_plan
from .lance_owner import job_mark, schema_diff, table_mark, with_mark
from .parts import schema_ranges


class LanceSink:
    """One table of the LanceDB database folder job.output, with its ledger in a hidden folder beside it."""

    def __init__(self, job: EmbedJob) -> None:
        self.lancedb = require("lancedb", "lancedb", "engine embed --lancedb-table")
        self.db_path = Path(job.output)
        self.name = job.lancedb_table
        self.state = self.db_path / f".{self.name}.engine-embed"
        self.label = f"LanceDB table {self.name!r} in {self.db_path}"
        self.want_index = job.index
        self._db = None
        self._mark: str | None = None  # the job's mark (lance_owner.py), once read from the ledger

    @property
    def db(self):
        if self._db is None:
            self._db = self.lancedb.connect(self.db_path)
        return self._db

    def close(self) -> None:
        """Nothing held open (each LanceDB call opens what it needs)."""

    def exists(self) -> bool:
        if not self.db_path.is_dir():
            return False
        token = None
        while True:  # list_tables pages its answer
            page = self.db.list_tables(page_token=token)
            if self.name in page.tables:
                return True
            token = page.page_token
            if not token:
                return False

    def claim(self, spec: str, files: list[InputFile], overwrite: bool) -> list[InputFile]:
        """The input files outside the database folder; refuse an unsafe OUTPUT or a table engine embed did not write;
        with overwrite, drop the table an earlier engine embed wrote, proved by the mark in its schema (its _SUCCESS
        first, so no kill leaves a table that looks complete)."""
        files = exclude_output(spec, files, self.db_path)
        check_output_path(self.db_path, reads=[f.path for f in files], what="OUTPUT", error=OutputError)
        if self.db_path.exists() and not self.db_path.is_dir():
            raise OutputError(f"{self.db_path} is a file; OUTPUT must be a LanceDB database folder")
        ledger = (self.state / LEDGER).is_file()
        if not ledger and self.exists():
            raise OutputError(f"table {self.name!r} in {self.db_path} was not written by engine embed; choose another "
                              "--lancedb-table (--overwrite only replaces a table engine embed wrote)")
        if overwrite and self.state.exists():
            if ledger:
                Ledger(self.state).close()  # raises if another run holds the lock
            exists = self.exists()
            if exists and not self._ours(self.db.open_table(self.name).schema, read_job(self.state)):
                raise OutputError(self._not_ours(None))
            (self.state / SUCCESS).unlink(missing_ok=True)
            if exists:
                self.db.drop_table(self.name)
            shutil.rmtree(self.state)
        return files

    def check_resume(self, ledger: Ledger, schema: pa.Schema | None) -> None:
        """Before anything is written: refuse a table this job did not write (no mark of the job's ledger record: it
        was replaced or recreated since), one whose fields are no longer the job's (schema: the job's part schema,
        None before the scan; a finished table may have more), or a missing table the ledger says rows were written
        into."""
        if not self.exists():
            if written(ledger):
                raise OutputError(f"{self.label} was dropped since this job wrote {written(ledger)} rows into it "
                                  f"(recorded in {self.state / LEDGER}); rerun with --overwrite to start over, or "
                                  "choose another --lancedb-table")
            return
        found = self.db.open_table(self.name).schema
        if not self._ours(found, ledger.job):
            raise OutputError(self._not_ours(schema_diff(found, schema) if schema is not None else None))
        # a finished table may have gained columns of the user's (nothing more is upserted); an unfinished one may not
        diff = schema_diff(found, schema, extra_ok=(self.state / SUCCESS).is_file()) if schema is not None else []
        if diff:
            raise OutputError(f"{self.label} does not have the fields this job writes ({'; '.join(diff)}); nothing "
                              "was written to it. Rerun with --overwrite to rebuild it, or choose another --lancedb-table")

    @staticmethod
    def _ours(schema: pa.Schema, header: dict | None) -> bool:
        mark = job_mark(header)
        return mark is not None and table_mark(schema) == mark

    def _not_ours(self, diff: list[str] | None) -> str:
        differs = f"; its fields differ from the job's ({'; '.join(diff)})" if diff else ""
        return (f"{self.label} is not the table engine embed wrote for the job in {self.state / LEDGER} (its schema "
                f"carries no mark of that job: it was replaced or recreated since){differs}; nothing was written to it. "
                "Choose another --lancedb-table, or move that table away yourself (--overwrite only replaces a table "
                "engine embed wrote)")

    def table(self, schema: pa.Schema):
        """The table, created on first use with the output schema (metadata included) and the job's mark; a table
        without the mark (someone else's, put in place meanwhile) is refused."""
        if self._mark is None:  # the job record never changes once written: read it once
            self._mark = job_mark(read_job(self.state))
            if self._mark is None:
                raise OutputError(f"{self.state / LEDGER} holds no job record; rerun the same command")
        if self.exists():
            table = self.db.open_table(self.name)
        else:
            table = self.db.create_table(self.name, schema=with_mark(schema, self._mark), exist_ok=True)
        if table_mark(table.schema) != self._mark:
            raise OutputError(self._not_ours(schema_diff(table.schema, schema)))
        return table

    def open_part(self, index: int, schema: pa.Schema) -> "LancePart":
        return LancePart(self.table(schema))

    def damaged(self, ledger: Ledger) -> list[str]:
        """What a finished table lacks: the table, rows or ids (it was changed since), or the index asked for now."""
        if not self.exists():
            return [f"table {self.name!r}"]
        table = self.db.open_table(self.name)
        expected, have = written(ledger), table.count_rows()
        lacks = [] if have == expected else [f"{expected} rows ({have} found)"]
        wanted = written_ids(ledger)
        if not lacks and wanted is not None and ids_digest(read_ids(table)) != wanted:
            lacks.append("the ids the parts wrote (changed in place since)")
        if self.want_index and not list(table.list_indices()) and (
                index_plan(have, table.schema.field("embedding").type.list_size) is not None or not self._decided()):
            lacks.append("the index --index asks for")
        return lacks

    def _decided(self) -> bool:
        """Whether _SUCCESS records an --index decision (an index, or why none was built)."""
        try:
            return json.loads((self.state / SUCCESS).read_text()).get("index") is not None
        except (OSError, ValueError, AttributeError):
            return False

    def finish(self, plan, ledger: Ledger, ranges: NDArray[np.float32] | None, progress) -> dict:
        """Check that the table holds every written row exactly once, compact it, and build the index if asked.
        Returns the _SUCCESS fields and, under 'notes', lines for the summary."""
        table = self.table(plan.part_schema(schema_ranges(plan, ranges)))  # none written: an empty table has the schema
        expected, have = written(ledger), table.count_rows()
        id_column = read_ids(table)
        ids = pc.count_distinct(id_column).as_py() if have else 0
        if have != expected or ids != have:
            raise OutputError(f"{self.label} holds {have} rows ({ids} distinct ids) but the finished parts wrote "
                              f"{expected}: something other than this job changed it; rerun with --overwrite to rebuild it")
        digest, wanted = ids_digest(id_column), written_ids(ledger)
        if wanted is not None and digest != wanted:
            raise OutputError(f"{self.label}: its ids are not those the finished parts wrote (the same {have} rows, but "
                              "their id digest differs from the parts' in the ledger): something other than this job "
                              "changed them; rerun with --overwrite to rebuild it")
        table.optimize()  # one upsert per window leaves many small fragments
        info = {"table": self.name, "database": str(self.db_path), "ids": digest, "index": None, "notes": []}
        if self.want_index:
            info["index"], note = build_index(table, have, plan.dim, progress)
            info["notes"].append(note)
        info["table_version"] = table.version
        return info


class LancePart:
    """Upsert one part's rows by id; nothing to commit or abort (each merge is atomic, a redone part upserts again).
    commit() hands the digest of the part's ids to its ledger record, for the finishing check."""

    def __init__(self, table) -> None:
        self.table = table
        self.ids: list[dict] = []

    def write(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self.table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(rows)
            self.ids.append(ids_digest(rows.column("id")))

    def commit(self) -> tuple[None, int, dict]:
        return None, 0, {"ids": add_digests(self.ids)}

    def abort(self) -> None:
        return None


def written(ledger: Ledger) -> int:
    """The rows the ledger's finished parts wrote."""
    return sum(p["rows"] for p in ledger.parts().values())


def written_ids(ledger: Ledger) -> dict | None:
    """The digest of the ids the finished parts wrote (the sum of theirs), or None when a part recorded none."""
    parts = [p for p in ledger.parts().values() if p["rows"]]
    if not all("ids" in p for p in parts):  # recorded by an engine before this check
        return None
    return add_digests([p["ids"] for p in parts])


def read_ids(table) -> pa.ChunkedArray:
    """The table's id column, read alone."""
    return table.search().select(["id"]).limit(None).to_arrow().column("id")
