"""Moving records between databases and machines: JSON lines and distilled copies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from compiler.records.record import MeasureRecord, RecordError
from compiler.records.store import SQLiteStore

_BATCH = 500


@dataclass(frozen=True)
class ImportReport:
    """What an import did: records added, exact duplicates ignored, malformed lines skipped."""

    added: int
    duplicates: int
    skipped: int


def export_jsonl(store: SQLiteStore, path: str | Path) -> int:
    """Write every record as one JSON object per line; returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for rec in store.records():
            out.write(json.dumps(rec.to_json(), separators=(",", ":")) + "\n")
            n += 1
    return n


def import_jsonl(store: SQLiteStore, path: str | Path) -> ImportReport:
    """Add the records of a JSON-lines file; malformed lines (a truncated last line,
    a missing key) are skipped and counted."""
    added = dupes = skipped = 0
    batch: list[MeasureRecord] = []

    def flush() -> None:
        nonlocal added, dupes
        new = store.add(batch)
        added, dupes = added + new, dupes + len(batch) - new
        batch.clear()

    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                batch.append(MeasureRecord.from_json(json.loads(line)))
            except (ValueError, RecordError, TypeError):
                skipped += 1
            if len(batch) >= _BATCH:
                flush()
    flush()
    return ImportReport(added, dupes, skipped)


def distill(store: SQLiteStore, path: str | Path) -> int:
    """A new database at `path` holding only the best valid record per (workload, target)."""
    best = store.best_all()
    with SQLiteStore(path) as out:
        out.add(best)
    return len(best)
