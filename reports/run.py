"""A run directory read into memory: run.json, the decision log, the optional
profile and bench summaries, and the run's records from the records database.

The directory contract (written by the tuning pipeline):
- `run.json`: model, records (path of the SQLite DB, relative to the directory
  or absolute), target, policy, scheduler, threads, trials, started, finished,
  tasks [{id, name, workload_key, ops, shapes, weight, flops}];
- `decisions.jsonl`: one JSON object per scheduler round (see allocation.py);
- `profile.json` (optional): per-task tuned_s / default_s / onnxruntime_s;
- `bench.json` (optional): the bench summary (latency_ms, onnxruntime_latency_ms, ...).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from compiler.errors import UserError
from compiler.records import MeasureRecord, RecordError, SQLiteStore

TASK_KEYS = ("id", "workload_key", "ops", "shapes", "weight", "flops")
DECISION_COLUMNS = (
    "round", "task", "task_name", "workload_key", "choice", "trials", "errors", "search_s",
    "build_s", "measure_s", "wall_s", "total_trials", "task_best_s", "f_s", "timestamp",
)  # fmt: skip


class ReportError(UserError):
    """A run directory or one of its files is missing or malformed (one-line message)."""


@dataclass
class Run:
    """Everything a report is built from."""

    path: Path
    meta: dict[str, Any]
    tasks: pd.DataFrame  # one row per task: id, name, workload_key, ops, shapes, weight, flops
    decisions: pd.DataFrame  # one row per scheduler round (DECISION_COLUMNS)
    records: pd.DataFrame  # one row per measurement of the run's workloads (records_frame)
    profile: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    gradients: list[list[dict]] = field(default_factory=list)  # per round, as logged

    @property
    def threads(self) -> int:
        return int(self.meta.get("threads") or 1)


def load_run(run_dir: str | Path, records: str | Path | None = None) -> Run:
    """Read `run_dir`; `records` overrides the database named in run.json."""
    path = Path(run_dir)
    meta = _read_json(path / "run.json", required=True, what="run directory")
    tasks = tasks_frame(meta, path / "run.json")
    decisions, gradients = read_decisions(path / "decisions.jsonl")
    db = _records_path(path, meta, records)
    frame = records_frame(read_records(db, set(tasks["workload_key"])), meta.get("target"))
    profile = _read_json(path / "profile.json", required=False, what="profile")
    bench = _read_json(path / "bench.json", required=False, what="bench summary")
    return Run(path, meta, tasks, decisions, frame, profile, bench, gradients)


def tasks_frame(meta: dict[str, Any], where: Path) -> pd.DataFrame:
    rows = meta.get("tasks")
    if not isinstance(rows, list) or not rows:
        raise ReportError(f"{where}: no tasks listed")
    for k, row in enumerate(rows):
        missing = [key for key in TASK_KEYS if not isinstance(row, dict) or key not in row]
        if missing:
            raise ReportError(f"{where}: task #{k} lacks {', '.join(missing)}")
    frame = pd.DataFrame(rows)
    if "name" not in frame:
        frame["name"] = [f"task{i}" for i in frame["id"]]
    frame["name"] = frame["name"].fillna("").astype(str)
    return frame  # in run.json's order: the decision log's "task" indexes this list


def read_decisions(path: Path) -> tuple[pd.DataFrame, list[list[dict]]]:
    """The decision log (an empty frame when absent); malformed lines name their number."""
    if not path.is_file():
        return pd.DataFrame(columns=list(DECISION_COLUMNS)), []
    rows, gradients = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise ReportError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(obj, dict) or "round" not in obj or "task" not in obj:
            raise ReportError(f"{path}:{number}: a decision needs 'round' and 'task'")
        gradients.append(obj.get("gradients") or [])
        rows.append({c: obj.get(c) for c in DECISION_COLUMNS})
    frame = pd.DataFrame(rows, columns=list(DECISION_COLUMNS))
    for col in DECISION_COLUMNS:
        if col not in ("task_name", "workload_key", "choice"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame, gradients


def read_records(db: Path | None, workload_keys: set[str]) -> list[MeasureRecord]:
    """The run's workloads' tuning records, in insertion order (none without a database;
    the side-by-side re-timings of models/retime.py are no trials and are left out)."""
    if db is None:
        return []
    if not db.is_file():
        raise ReportError(f"{db}: no such records database")
    try:
        with SQLiteStore(db) as store:
            return [r for r in store.records()
                    if r.workload_key in workload_keys and "retimed" not in r.settings]  # fmt: skip
    except RecordError as err:
        raise ReportError(str(err)) from None


def records_frame(records: list[MeasureRecord], target: str | None = None) -> pd.DataFrame:
    """One row per record: key, name, time, mean cost (NaN on error), error, times, template.

    Records of another target are dropped when `target` is given (a database may
    hold several machines' measurements). `template` names the AutoTVM-style
    template of template records (`settings["template"]`), empty for sketch or
    random search records.
    """
    rows = []
    for r in records:
        if target and r.target != target:
            continue
        cost = r.mean_cost_s
        rows.append(
            {
                "workload_key": r.workload_key,
                "task_name": r.task_name,
                "timestamp": r.timestamp,
                "mean_cost_s": cost if math.isfinite(cost) else math.nan,
                "error_kind": r.error_kind,
                "build_s": r.build_s,
                "run_s": r.run_s,
                "flop_count": r.flop_count,
                "template": template_name(r.settings.get("template")),
                "policy": str(r.settings.get("policy") or ""),
            }
        )
    columns = ["workload_key", "task_name", "timestamp", "mean_cost_s", "error_kind",
               "build_s", "run_s", "flop_count", "template", "policy"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def template_name(meta: Any) -> str:
    """The template a record came from: settings["template"] is the template policy's
    config ({"name", "index", "space", ...}); a plain string is taken as the name."""
    if isinstance(meta, dict):
        return str(meta.get("name") or "template")
    return str(meta) if meta else ""


def _records_path(path: Path, meta: dict[str, Any], override: str | Path | None) -> Path | None:
    if override is not None:
        return Path(override)
    named = meta.get("records")
    if not named:
        return None
    db = Path(named)
    if db.is_absolute() or not (path / db).exists() and db.exists():
        return db  # absolute, or relative to the working directory the pipeline ran in
    return path / db


def _read_json(path: Path, *, required: bool, what: str) -> Any:
    if not path.is_file():
        if required:
            raise ReportError(f"{path.parent}: not a {what} (no {path.name})")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: unreadable JSON ({err})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object")
    return data
