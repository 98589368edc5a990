"""The records database: every measurement, append-only, resumable (SQLite, WAL).

>>> from compiler import records
>>> db = records.create("sqlite", path="run/records.db")   # doctest: +SKIP
>>> db.best(workload_key, records.host_target_info(threads=1).target)  # doctest: +SKIP
"""

from compiler.records.claims import claim_owner
from compiler.records.record import (
    ERROR_KINDS,
    MeasureRecord,
    RecordError,
    TargetInfo,
    host_target_info,
    steps_hash,
    target_threads,
    threads_target,
    tool_version,
)
from compiler.records.store import RecordStore, SQLiteStore, StoreWriteError, create
from compiler.records.transfer import ImportReport, distill, export_jsonl, import_jsonl

__all__ = [
    "ERROR_KINDS",
    "ImportReport",
    "MeasureRecord",
    "RecordError",
    "RecordStore",
    "SQLiteStore",
    "StoreWriteError",
    "TargetInfo",
    "claim_owner",
    "create",
    "distill",
    "export_jsonl",
    "host_target_info",
    "import_jsonl",
    "steps_hash",
    "target_threads",
    "threads_target",
    "tool_version",
]
