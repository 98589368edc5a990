"""The records database: SQLite (standard library) in WAL mode, append-only.

Every insert commits at once, so a process killed at any moment loses no
finished measurement; concurrent writers wait on SQLite's busy timeout and
retry. A record's target key carries the thread count its settings name
(record.keyed_target: imports of older files too). Exact duplicates (same candidate, target and timestamp) are ignored,
which makes importing the same file twice harmless.

Concurrent tuning runs on one database split the work through `claims`: a run
claims the candidates it is about to measure (`claim`), skips those another
live run holds, and a claim goes when its record is written (or its owner is
gone). A store opened `readonly` writes nothing (no schema, no WAL switch), so a
database on a read-only file or mount can be read; a query that meets a damaged
file raises RecordError naming it, and `check()` looks for damage up front.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, Self

from compiler.records.claims import Claims
from compiler.records.record import THREADS_FLAG, MeasureRecord, RecordError, keyed_target

SCHEMA_VERSION = "2"  # 2: the thread count in the target key (record.threads_target)
_COLUMNS = (
    "workload_key, target, steps_hash, steps, costs_s, mean_cost_s, error_kind, error_msg, "
    "build_s, run_s, timestamp, task_name, flop_count, settings, tool_version, cpu, features, cores"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    workload_key TEXT NOT NULL, target TEXT NOT NULL, steps_hash TEXT NOT NULL,
    steps TEXT NOT NULL, costs_s TEXT NOT NULL,
    mean_cost_s REAL,  -- NULL for an error record
    error_kind TEXT, error_msg TEXT NOT NULL DEFAULT '',
    build_s REAL, run_s REAL, timestamp REAL NOT NULL,
    task_name TEXT, flop_count INTEGER, settings TEXT, tool_version TEXT,
    cpu TEXT, features TEXT, cores INTEGER
);
CREATE INDEX IF NOT EXISTS best_by_workload
    ON measurements (workload_key, target, mean_cost_s);
CREATE UNIQUE INDEX IF NOT EXISTS by_candidate
    ON measurements (workload_key, target, steps_hash, timestamp);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');  -- then _migrate: to SCHEMA_VERSION
CREATE TABLE IF NOT EXISTS claims (
    workload_key TEXT NOT NULL, target TEXT NOT NULL, steps_hash TEXT NOT NULL,
    owner TEXT NOT NULL,  -- "host:pid:random" (claim_owner)
    since REAL NOT NULL,
    PRIMARY KEY (workload_key, target, steps_hash)
);
"""
_THREADS = "CAST(json_extract(settings, '$.threads') AS INTEGER)"
_MIGRATE_1_TO_2 = f"""
UPDATE OR IGNORE measurements SET target = target || '{THREADS_FLAG}' || {_THREADS}
WHERE json_valid(settings) AND {_THREADS} > 1 AND instr(target, '{THREADS_FLAG}') = 0
"""
_RETRY_S = 60.0  # on top of the busy timeout: give up on a lock held this long


class StoreWriteError(RuntimeError):
    """Records could not be written (a full disk, a database gone read-only); the
    message names the database and the cause."""


class RecordStore(Protocol):
    """Where measurements live; see `SQLiteStore` for the semantics."""

    def add(self, records: Iterable[MeasureRecord]) -> int: ...

    def measured(self, workload_key: str, target: str) -> set[str]: ...

    def best(
        self, workload_key: str, target: str, until: float | None = None
    ) -> MeasureRecord | None: ...

    def retimed(self, workload_key: str, target: str) -> MeasureRecord | None: ...

    def best_all(self, target: str | None = None) -> list[MeasureRecord]: ...

    def records(self, workload_key: str | None = None) -> Iterator[MeasureRecord]: ...

    def close(self) -> None: ...


class SQLiteStore(Claims):
    """Records in one SQLite file. Example: `with SQLiteStore("run/records.db") as db: ...`.

    `readonly=True` opens an existing database without writing to it (reads only:
    `add` and `claim` fail with StoreWriteError)."""

    def __init__(
        self, path: str | Path, *, busy_timeout_s: float = 30.0, readonly: bool = False
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly:
            self._db = self._open_readonly(busy_timeout_s)
            return
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise RecordError(f"{self.path}: cannot open the records database ({err})") from None
        try:
            self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process kills
            self._retry(lambda: self._db.executescript(_SCHEMA))
            self._retry(self._migrate)
        except sqlite3.OperationalError as err:  # read-only, locked, I/O
            self._db.close()
            raise RecordError(
                f"{self.path}: cannot open the records database for writing ({err})"
            ) from None
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise RecordError(f"{self.path}: not a records database ({err})") from None

    def _migrate(self) -> None:
        """Version 1 to 2: a record measured on more than one thread (its settings say)
        gets the thread count in its target key, so lookups at 1 thread skip it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'")
                if row.fetchone()[0] == "1":
                    self._db.execute(_MIGRATE_1_TO_2)
                    self._db.execute(
                        "UPDATE meta SET value=? WHERE key='schema_version'", (SCHEMA_VERSION,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _open_readonly(self, busy_timeout_s: float) -> sqlite3.Connection:
        """`mode=ro`: nothing written to the file. A WAL database needs its -shm file
        (created beside it when the directory allows); where it cannot be, and there
        is no -wal file to read, the file is opened `immutable` (nothing to miss)."""
        uri = "file:" + urllib.parse.quote(str(self.path.absolute())) + "?mode=ro"
        try:
            return self._connect_readonly(uri, busy_timeout_s)
        except sqlite3.OperationalError as err:
            cause = err
        wal = Path(f"{self.path}-wal")
        cannot_open = (getattr(cause, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_CANTOPEN
        if not cannot_open or not self.path.is_file() or (wal.exists() and wal.stat().st_size):
            hint = "; copy it with its -wal file to a writable directory" if wal.exists() else ""
            raise RecordError(f"{self.path}: cannot open read-only ({cause}){hint}") from None
        try:
            return self._connect_readonly(uri + "&immutable=1", busy_timeout_s)
        except sqlite3.OperationalError as err:
            raise RecordError(f"{self.path}: cannot open read-only ({err})") from None

    def _connect_readonly(self, uri: str, busy_timeout_s: float) -> sqlite3.Connection:
        db = sqlite3.connect(
            uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA query_only=ON")
            found = self._retry(
                lambda: db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='measurements'"
                ).fetchone()
            )
        except sqlite3.OperationalError:
            db.close()
            raise
        except sqlite3.DatabaseError as err:
            db.close()
            raise RecordError(f"{self.path}: not a records database ({err})") from None
        if found is None:
            db.close()
            raise RecordError(f"{self.path}: not a records database (no measurements table)")
        return db

    def add(self, records: Iterable[MeasureRecord]) -> int:
        """Insert and commit; returns how many were new (exact duplicates are skipped)."""
        rows = [_row(r) for r in records]
        if not rows:
            return 0
        marks = ", ".join("?" * len(rows[0]))
        sql = f"INSERT OR IGNORE INTO measurements ({_COLUMNS}) VALUES ({marks})"
        release = "DELETE FROM claims WHERE workload_key=? AND target=? AND steps_hash=?"

        def write() -> int:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany(sql, rows)
                added = self._db.total_changes - before
                self._db.executemany(release, [row[:3] for row in rows])  # measured now
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            return added

        with self._lock:
            try:
                return self._retry(write)
            except (sqlite3.Error, OSError) as err:
                raise StoreWriteError(f"{self.path}: cannot write records ({err})") from err

    def _rollback(self) -> None:
        """Undo a failed transaction; an error of the ROLLBACK itself (after a failed
        COMMIT, say) must not hide the first one, which the caller re-raises."""
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def measured(self, workload_key: str, target: str) -> set[str]:
        """Step hashes of every candidate of this workload measured on this target."""
        sql = "SELECT DISTINCT steps_hash FROM measurements WHERE workload_key=? AND target=?"
        return {h for (h,) in self._query(sql, (workload_key, target))}

    def best(
        self, workload_key: str, target: str, until: float | None = None
    ) -> MeasureRecord | None:
        """The valid record with the lowest mean cost for this workload on this target
        (among those measured at or before `until`, a Unix time, if given)."""
        sql = (
            f"SELECT {_COLUMNS} FROM measurements WHERE workload_key=? AND target=?"
            " AND mean_cost_s IS NOT NULL AND timestamp <= ? ORDER BY mean_cost_s LIMIT 1"
        )
        rows = self._query(sql, (workload_key, target, math.inf if until is None else until))
        return self._record(rows[0]) if rows else None

    def retimed(self, workload_key: str, target: str) -> MeasureRecord | None:
        """The fastest record of this workload's latest side-by-side re-timing (records
        whose settings carry "retimed": the re-timing's start time, models/retime.py),
        or None when there is none or a valid record was measured after it."""
        where = "workload_key=? AND target=? AND mean_cost_s IS NOT NULL"
        session = "json_extract(settings, '$.retimed')"
        sql = (
            f"SELECT {_COLUMNS}, {session} FROM measurements WHERE {where} AND {session} = "
            f"(SELECT MAX({session}) FROM measurements WHERE {where}) "
            "ORDER BY mean_cost_s LIMIT 1"
        )
        rows = self._query(sql, (workload_key, target) * 2)
        if not rows:
            return None
        since = f"SELECT 1 FROM measurements WHERE {where} AND {session} IS NULL AND timestamp > ?"
        if self._query(since, (workload_key, target, rows[0][-1])):
            return None  # tuned again since: the re-timing no longer covers the best
        return self._record(rows[0][:-1])

    def best_all(self, target: str | None = None) -> list[MeasureRecord]:
        """The best valid record per (workload key, target), in one query."""
        where = "mean_cost_s IS NOT NULL" + (" AND target=?" if target else "")
        sql = (
            f"SELECT {_COLUMNS}, MIN(mean_cost_s) FROM measurements WHERE {where}"
            " GROUP BY workload_key, target ORDER BY task_name, workload_key"
        )
        return [self._record(r[:-1]) for r in self._query(sql, (target,) if target else ())]

    def records(self, workload_key: str | None = None) -> Iterator[MeasureRecord]:
        """Every record in insertion order (optionally of one workload)."""
        where, args = ("WHERE workload_key=?", (workload_key,)) if workload_key else ("", ())
        for row in self._query(f"SELECT {_COLUMNS} FROM measurements {where} ORDER BY id", args):
            yield self._record(row)

    def summary(self) -> list[dict[str, Any]]:
        """Per (workload, target): task name, record and error counts, best mean cost."""
        sql = (
            "SELECT workload_key, target, MAX(task_name), MAX(flop_count), COUNT(*),"
            " SUM(error_kind IS NOT NULL), MIN(mean_cost_s) FROM measurements"
            " GROUP BY workload_key, target ORDER BY MAX(task_name), workload_key"
        )
        keys = ("workload_key", "target", "task_name", "flop_count", "records", "errors")
        return [dict(zip(keys, row[:6]), best_mean_cost_s=row[6]) for row in self._query(sql, ())]

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM measurements", ())[0][0])

    def check(self) -> None:
        """Read every page (`PRAGMA quick_check`); RecordError naming the file and the
        first problem when the database is damaged."""
        lines = [line for (text,) in self._query("PRAGMA quick_check(3)", ())
                 for line in str(text).splitlines()]  # fmt: skip
        problems = [line for line in lines if line != "ok" and not line.startswith("***")]
        if problems:
            raise RecordError(f"{self.path}: the records database is damaged ({problems[0]})")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            try:
                return self._retry(lambda: self._db.execute(sql, args).fetchall())
            except sqlite3.OperationalError as err:
                raise RecordError(
                    f"{self.path}: cannot read the records database ({err})"
                ) from None
            except sqlite3.DatabaseError as err:  # malformed, not a database
                raise RecordError(f"{self.path}: the records database is damaged ({err})") from None

    def _record(self, row: tuple) -> MeasureRecord:
        try:
            return _record(row)
        except (ValueError, TypeError) as err:  # a column's JSON text garbled
            raise RecordError(
                f"{self.path}: the records database is damaged (a record: {err})"
            ) from None

    def _retry(self, fn: Any) -> Any:
        """Run `fn`, retrying while another process holds the database lock."""
        deadline = time.monotonic() + _RETRY_S
        delay = 0.01
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as err:
                locked = "locked" in str(err) or "busy" in str(err)
                if not locked or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)


def _row(r: MeasureRecord) -> tuple:
    mean = r.mean_cost_s
    return (
        r.workload_key, keyed_target(r), r.steps_hash, json.dumps(r.steps), json.dumps(list(r.costs_s)),
        None if mean == float("inf") else mean, r.error_kind, r.error_msg, r.build_s, r.run_s,
        r.timestamp, r.task_name, r.flop_count, json.dumps(r.settings), r.tool_version,
        r.cpu, r.features, r.cores,
    )  # fmt: skip


def _record(row: tuple) -> MeasureRecord:
    (wk, target, _, steps, costs, _, kind, msg, build_s, run_s, ts, name, flops, settings,
     version, cpu, features, cores) = row  # fmt: skip
    return MeasureRecord(
        wk, target, json.loads(steps), tuple(json.loads(costs)), kind, ts, msg or "",
        build_s or 0.0, run_s or 0.0, name or "", flops or 0, json.loads(settings or "{}"),
        version or "", cpu or "", features or "", cores or 0,
    )  # fmt: skip


def create(kind: str = "sqlite", *, path: str | Path) -> RecordStore:
    """A records store by name: `sqlite` (a file; the embedded default)."""
    if kind == "sqlite":
        return SQLiteStore(path)
    raise ValueError(f"records store: unknown kind {kind!r} (choose from sqlite)")
