"""The trend across nightly runs: end-to-end and per-layer latency per night.

Nightly runs write dated run directories `OUT/YYYY-MM-DD[...]/` under one OUT;
at the end of each the pipeline calls `append_trend(run_dir, OUT/"trend.csv")`.
`trend.csv` is one file in long format, one row per run and task:

    date, run_dir, model, latency_ms, onnxruntime_latency_ms, estimated_ms,
    total_trials, task_id, workload_key, task_best_s

(the run-level columns repeat on each of the run's task rows). Appending a run
again replaces its rows, so a re-run of the same night never doubles a line.
`trend_table` pivots it to one line per night (the night's last run) with a
`task<ID>_ms` column per task.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd

from reports.run import ReportError, load_run
from reports.tables import profile_by_task, record_stats

TREND_COLUMNS = [
    "date", "run_dir", "model", "latency_ms", "onnxruntime_latency_ms", "estimated_ms",
    "total_trials", "task_id", "workload_key", "task_best_s",
]  # fmt: skip
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def run_date(run_dir: Path, started: str | None) -> str:
    """The night a run belongs to: its directory's date prefix, else run.json's start."""
    match = _DATED.match(run_dir.name)
    if match:
        return match.group(1)
    if started:
        return str(started)[:10]
    return dt.date.today().isoformat()


def trend_rows(run_dir: str | Path, records: str | Path | None = None) -> pd.DataFrame:
    """This run's trend rows (TREND_COLUMNS), one per task."""
    run = load_run(run_dir, records)
    stats = record_stats(run.records).reindex(run.tasks["workload_key"])
    best = stats["best_s"].to_numpy(dtype=float)
    default = profile_by_task(run.profile).reindex(run.tasks["id"])["default_s"]
    latency = pd.Series(best).fillna(pd.Series(default.to_numpy(dtype=float)))
    estimated_ms = float((latency * run.tasks["weight"].to_numpy()).sum(min_count=1)) * 1e3
    bench = run.bench or {}
    total = run.decisions["total_trials"].max() if len(run.decisions) else None
    if total is None or pd.isna(total):
        total = int(stats["trials"].fillna(0).sum())
    return pd.DataFrame(
        {
            "date": run_date(run.path, run.meta.get("started")),
            "run_dir": str(run.path.resolve()),
            "model": run.meta.get("model", ""),
            "latency_ms": bench.get("latency_ms"),
            "onnxruntime_latency_ms": bench.get("onnxruntime_latency_ms"),
            "estimated_ms": estimated_ms,
            "total_trials": int(total),
            "task_id": run.tasks["id"].astype(int).to_numpy(),
            "workload_key": run.tasks["workload_key"].to_numpy(),
            "task_best_s": best,
        }
    )[TREND_COLUMNS]


def append_trend(run_dir: str | Path, trend_path: str | Path) -> Path:
    """Add (or replace) `run_dir`'s rows in the trend CSV at `trend_path`; returns the path.

    Example:
        >>> append_trend("out/2026-11-01", "out/trend.csv")   # doctest: +SKIP
    """
    path = Path(trend_path)
    rows = trend_rows(run_dir)
    old = read_trend(path)
    if len(old):
        old = old[old["run_dir"] != rows["run_dir"].iloc[0]]
        rows = pd.concat([old, rows], ignore_index=True) if len(old) else rows
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    rows.sort_values(["date", "run_dir", "task_id"], kind="stable").to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def read_trend(path: str | Path) -> pd.DataFrame:
    """The long-format trend rows (empty when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=TREND_COLUMNS)
    try:
        frame = pd.read_csv(path, dtype={"date": str, "run_dir": str, "workload_key": str})
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: unreadable trend table ({err})") from None
    missing = [c for c in TREND_COLUMNS if c not in frame]
    if missing:
        raise ReportError(f"{path}: not a trend table (lacks {', '.join(missing)})")
    return frame[TREND_COLUMNS]


def trend_table(trend: pd.DataFrame | str | Path) -> pd.DataFrame:
    """One line per night and model (the night's last run): headline and per-task latency."""
    rows = read_trend(trend) if not isinstance(trend, pd.DataFrame) else trend
    if rows.empty:
        return pd.DataFrame(columns=["date", "model", "run_dir", "latency_ms",
                                     "onnxruntime_latency_ms", "estimated_ms", "total_trials"])  # fmt: skip
    last = rows.groupby(["date", "model"])["run_dir"].max().reset_index()
    rows = rows.merge(last, on=["date", "model", "run_dir"])
    head = rows.groupby(["date", "model", "run_dir"], as_index=False).first()
    head = head[["date", "model", "run_dir", "latency_ms", "onnxruntime_latency_ms",
                 "estimated_ms", "total_trials"]]  # fmt: skip
    per_task = rows.pivot_table(
        index=["date", "model"], columns="task_id", values="task_best_s", aggfunc="first"
    )
    per_task = (per_task * 1e3).rename(columns=lambda k: f"task{int(k)}_ms").reset_index()
    out = head.merge(per_task, on=["date", "model"], how="left")
    return out.sort_values(["model", "date"]).reset_index(drop=True)
