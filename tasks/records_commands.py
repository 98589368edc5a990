"""The records commands behind the CLI: `records {show,best,export,import,distill}`.

Plain functions (no Prefect): each returns the `--json` summary object and
writes human output to stderr; bad input raises `RecordsInputError` (exit 2), and
so does a damaged database (RecordError, naming it: every command checks the
database first). `show`, `best`, `export` and `distill` open the database
read-only, so a database on a read-only file or mount can be read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from compiler.errors import UserError
from compiler.records import (
    RecordError,
    SQLiteStore,
    StoreWriteError,
    distill,
    export_jsonl,
    import_jsonl,
)

SHOWN_BAD_LINES = 5  # malformed lines an import names on stderr (all are counted)


class RecordsInputError(UserError):
    """A database or file argument is unusable; the message is one line naming it."""


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _open(db: str, *, write: bool = False) -> SQLiteStore:
    """The database at `db`, checked for damage: read-only unless `write` (which
    creates it when missing)."""
    if not write and not Path(db).is_file():
        raise RecordsInputError(f"records: no database at {db}")
    if write and Path(db).is_file() and Path(db).stat().st_size > 0:
        _open(db).close()  # checked before anything is written to it
    try:
        store = SQLiteStore(db, readonly=not write)
    except RecordError as err:
        raise RecordsInputError(f"records: {err}") from None
    except OSError as err:
        raise RecordsInputError(f"records: cannot open {db}: {err.strerror}") from None
    try:
        store.check()
    except RecordError as err:
        store.close()
        raise RecordsInputError(f"records: {err}") from None
    return store


def _need_file(command: str, file: str | None) -> str:
    if not file:
        raise RecordsInputError(f"records {command}: give a FILE after the database")
    return file


def show_command(db: str) -> dict[str, Any]:
    """Per workload and target: task name, records, errors, best mean cost."""
    with _open(db) as store:
        rows, total = store.summary(), store.count()
    _say(f"{db}: {total} records, {len(rows)} workloads")
    _say(
        f"{'Workload':<12} | {'Task':<28} | {'Records':>7} | {'Errors':>6} | {'Best (ms)':>10} | Target"
    )
    for r in rows:
        best = r["best_mean_cost_s"]
        best_ms = f"{best * 1e3:10.4f}" if best is not None else f"{'-':>10}"
        _say(
            f"{r['workload_key'][:12]:<12} | {r['task_name'][:28]:<28} | {r['records']:>7} | "
            f"{r['errors']:>6} | {best_ms} | {r['target']}"
        )
    return {"db": db, "records": total, "workloads": rows}


def best_command(db: str, *, target: str | None = None) -> dict[str, Any]:
    """The best valid record per (workload key, target)."""
    with _open(db) as store:
        best = store.best_all(target)
    _say(f"{db}: best of {len(best)} workloads")
    for r in best:
        gflops = r.flop_count / r.mean_cost_s / 1e9 if r.flop_count else 0.0
        _say(
            f"{r.workload_key[:12]} {r.task_name[:28]:<28} {r.mean_cost_s * 1e3:10.4f} ms "
            f"{gflops:8.2f} GFLOP/s  {len(r.steps)} steps  {r.target}"
        )
    return {"db": db, "best": [r.to_json() for r in best]}


def export_command(db: str, file: str | None) -> dict[str, Any]:
    """Every record as JSON lines into FILE."""
    path = _need_file("export", file)
    with _open(db) as store:
        try:
            n = export_jsonl(store, path)
        except OSError as err:
            raise RecordsInputError(
                f"records export: cannot write {path}: {err.strerror}"
            ) from None
    _say(f"{db}: exported {n} records to {path}")
    return {"db": db, "file": path, "records": n}


def import_command(db: str, file: str | None) -> dict[str, Any]:
    """Add the records of a JSON-lines FILE (creating the database); malformed lines are skipped."""
    path = _need_file("import", file)
    if not Path(path).is_file():
        raise RecordsInputError(f"records import: no file at {path}")
    with _open(db, write=True) as store:
        try:
            report = import_jsonl(store, path)
        except StoreWriteError as err:
            raise RecordsInputError(
                f"records import: {err}; the records added before are kept "
                "(importing the file again skips them)"
            ) from None
        except OSError as err:
            raise RecordsInputError(f"records import: cannot read {path}: {err.strerror}") from None
    _say(
        f"{db}: imported {report.added} records from {path} "
        f"({report.duplicates} already there, {report.skipped} malformed lines skipped)"
    )
    for lineno, reason in report.bad_lines[:SHOWN_BAD_LINES]:
        _say(f"  {path}:{lineno}: {reason}")
    if report.skipped > SHOWN_BAD_LINES:
        _say(f"  ... and {report.skipped - SHOWN_BAD_LINES} more malformed lines")
    bad = [{"line": n, "reason": r} for n, r in report.bad_lines]
    return {"db": db, "file": path, "added": report.added, "duplicates": report.duplicates,
            "skipped": report.skipped, "bad_lines": bad}  # fmt: skip


def distill_command(db: str, file: str | None) -> dict[str, Any]:
    """A new database FILE with only the best record per workload and target."""
    path = _need_file("distill", file)
    if Path(path).exists():
        raise RecordsInputError(f"records distill: {path} exists; choose a new file")
    with _open(db) as store:
        try:
            n = distill(store, path)
        except (StoreWriteError, RecordError) as err:  # the new database's side
            raise RecordsInputError(f"records distill: {err}") from None
        except OSError as err:
            raise RecordsInputError(
                f"records distill: cannot write {path}: {err.strerror}"
            ) from None
    _say(f"{db}: distilled {n} best records into {path}")
    return {"db": db, "file": path, "records": n}
