"""The decision log: one JSON object per scheduler round, appended to a file.

The format is documented in the package docstring (compiler/task_scheduler).
Each line is written and flushed as its round ends, so a killed run loses at
most the round in flight; a resumed run appends to the same file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

KEYS = (
    "round", "task", "task_name", "workload_key", "choice", "trials", "errors",
    "search_s", "build_s", "measure_s", "ahead_s", "learn_s", "wall_s", "total_trials", "task_best_s", "f_s",
    "timestamp", "gradients",
)  # fmt: skip


def finite_or_none(x: float | None) -> float | None:
    """JSON has no infinity: unknown or infinite latencies are written as null."""
    return x if x is not None and math.isfinite(x) else None


class DecisionLog:
    """Appends round lines to `path` (created with its parent folders on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, line: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, allow_nan=False) + "\n")
            f.flush()


def read_decision_log(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of the decision log at `path` ([] when there is none).

    A last line cut short by a killed process is skipped; any other bad line
    raises ValueError naming the file and line number.
    """
    p = Path(path)
    if not p.is_file():
        return []
    lines = p.read_text(encoding="utf-8").splitlines()
    out = []
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            if n == len(lines):
                break  # the round in flight when the run was killed
            raise ValueError(f"{p}:{n}: not a decision-log line ({err})") from None
        if not isinstance(obj, dict) or "task" not in obj or "trials" not in obj:
            raise ValueError(f"{p}:{n}: a decision-log line needs 'task' and 'trials'")
        out.append(obj)
    return out
