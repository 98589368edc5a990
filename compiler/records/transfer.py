"""Moving records between databases and machines: JSON lines and distilled copies.

Imports check every line on its own (`MeasureRecord.from_json`): a bad line is
skipped and counted with its number and reason, and never costs the good lines
around it. Exports and distilled copies are written to a temporary file beside
the target and renamed when complete, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from compiler.records.record import MeasureRecord, RecordError
from compiler.records.store import SQLiteStore, StoreWriteError

_BATCH = 500
REPORTED_LINES = 10  # bad lines an ImportReport names (all are counted)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: records added, exact duplicates ignored, malformed lines
    skipped, and the first REPORTED_LINES of those as (line number, reason)."""

    added: int
    duplicates: int
    skipped: int
    bad_lines: tuple[tuple[int, str], ...] = ()


def export_jsonl(store: SQLiteStore, path: str | Path) -> int:
    """Write every record as one JSON object per line; returns the count. The file
    appears only when complete (a damaged database or a full disk leaves none)."""
    records = list(store.records())  # a damaged database fails here, before any file
    with _complete_file(Path(path)) as out:
        for rec in records:
            out.write(json.dumps(rec.to_json(), separators=(",", ":")) + "\n")
    return len(records)


def import_jsonl(store: SQLiteStore, path: str | Path) -> ImportReport:
    """Add the records of a JSON-lines file; malformed lines (not JSON, a truncated
    line, a missing key, a field of the wrong type or out of range, nesting too
    deep) are skipped and counted one by one. A database that refuses the writes
    raises StoreWriteError (the batches before are kept)."""
    added = dupes = skipped = 0
    bad: list[tuple[int, str]] = []
    batch: list[tuple[int, MeasureRecord]] = []

    def skip(lineno: int, reason: str) -> None:
        nonlocal skipped
        skipped += 1
        if len(bad) < REPORTED_LINES:
            bad.append((lineno, reason if len(reason) <= 160 else reason[:157] + "..."))

    def flush() -> None:
        nonlocal added, dupes
        try:
            new = store.add(r for _, r in batch)
            added, dupes = added + new, dupes + len(batch) - new
        except StoreWriteError:
            raise
        except Exception:  # noqa: BLE001 - a record the database refuses: find it, one by one
            for lineno, rec in batch:
                try:
                    new = store.add([rec])
                except StoreWriteError:
                    raise
                except Exception as err:  # noqa: BLE001 - that line's fault alone
                    skip(lineno, f"not storable ({type(err).__name__}: {err})")
                    continue
                added, dupes = added + new, dupes + 1 - new
        batch.clear()

    with open(path, encoding="utf-8", errors="replace") as lines:
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = MeasureRecord.from_json(json.loads(line))
                rec.steps_hash  # noqa: B018 - hashing the steps must work as well
            except RecordError as err:
                skip(lineno, str(err))
            except json.JSONDecodeError as err:
                skip(lineno, f"not JSON ({err.msg}, column {err.colno})")
            except RecursionError:
                skip(lineno, "not JSON this tool reads (nested too deeply)")
            except Exception as err:  # noqa: BLE001 - whatever it is, it is this line's
                skip(lineno, f"{type(err).__name__}: {err}")
            else:
                batch.append((lineno, rec))
            if len(batch) >= _BATCH:
                flush()
    if batch:
        flush()
    return ImportReport(added, dupes, skipped, tuple(bad))


def distill(store: SQLiteStore, path: str | Path) -> int:
    """A new database at `path` holding only the best valid record per (workload, target);
    it appears only when complete."""
    best = store.best_all()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with SQLiteStore(tmp) as out:
            out.add(best)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return len(best)


@contextlib.contextmanager
def _complete_file(path: Path) -> Iterator[IO[str]]:
    """A text file written beside `path` and renamed to it once complete (and
    synced); removed on any failure. A device or pipe (not a regular file) is
    written in place."""
    if path.exists() and not path.is_file():
        with open(path, "w", encoding="utf-8") as out:
            yield out
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
