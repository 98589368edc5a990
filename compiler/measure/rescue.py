"""Results that could not be written to the records database are not lost.

When a write fails (a full disk, a database gone read-only), the measurer keeps
every result it still gets in a JSON-lines file beside the database, in the
format `records import` reads, and the run stops once the batch in flight is
done, naming the database, the cause and the file:

    sketchtune records import runs/records.db runs/records.db.unsaved.jsonl
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from compiler.errors import StoppedError
from compiler.records import MeasureRecord


class Rescue:
    """The file the results go to once the database refused one (opened on first use)."""

    def __init__(self, db_path: str | Path, cause: Exception) -> None:
        self.db_path, self.cause = Path(db_path), cause
        self.path: Path | None = None
        self.saved = 0
        self.lost = 0

    def keep(self, record: MeasureRecord) -> None:
        line = json.dumps(record.to_json(), separators=(",", ":")) + "\n"
        for path in self._candidates():
            try:
                with open(path, "a", encoding="utf-8") as out:
                    out.write(line)
            except OSError:
                continue
            self.path, self.saved = path, self.saved + 1
            return
        self.lost += 1

    def _candidates(self) -> list[Path]:
        """Beside the database; in the temporary directory if that fails too."""
        if self.path is not None:
            return [self.path]
        name = self.db_path.name + ".unsaved.jsonl"
        return [self.db_path.with_name(name), Path(tempfile.gettempdir()) / name]

    def error(self) -> StoppedError:
        """The one-line reason the run stops."""
        where = (f"{self.saved} measured result(s) saved to {self.path}; add them back with "
                 f"`sketchtune records import {self.db_path} {self.path}`"
                 if self.saved else "")  # fmt: skip
        lost = f"{self.lost} result(s) could not be saved anywhere" if self.lost else ""
        kept = "; ".join(x for x in (where, lost) if x)
        return StoppedError(f"{self.cause}; every record written before is kept; {kept}")
