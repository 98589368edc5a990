"""Convergence: the best latency found against trials, per task and end to end.

Per task, from the records in timestamp order: trial k's cost and the best
valid cost among the first k trials (NaN until the first valid one). End to
end, from the scheduler's decision log: the estimated network latency after
each round, against total trials and wall time.
"""

from __future__ import annotations

import pandas as pd

CURVE_COLUMNS = ["task_id", "trial", "timestamp", "cost_s", "best_s", "gflops"]
ESTIMATE_COLUMNS = ["round", "total_trials", "wall_s", "estimated_ms"]


def task_curves(tasks: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Long format: one row per (task, trial) with the running best (CURVE_COLUMNS)."""
    frames = []
    for task in tasks.itertuples(index=False):
        rows = records[records["workload_key"] == task.workload_key]
        if rows.empty:
            continue
        rows = rows.sort_values("timestamp", kind="stable")
        best = rows["mean_cost_s"].cummin()
        frames.append(
            pd.DataFrame(
                {
                    "task_id": int(task.id),
                    "trial": range(1, len(rows) + 1),
                    "timestamp": rows["timestamp"].to_numpy(),
                    "cost_s": rows["mean_cost_s"].to_numpy(),
                    "best_s": best.to_numpy(),
                    "gflops": task.flops / best.to_numpy() / 1e9,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def estimate_curve(decisions: pd.DataFrame) -> pd.DataFrame:
    """Estimated end-to-end latency (ms) after each round; rounds without a finite one drop."""
    if decisions.empty:
        return pd.DataFrame(columns=ESTIMATE_COLUMNS)
    out = pd.DataFrame(
        {
            "round": decisions["round"],
            "total_trials": decisions["total_trials"],
            "wall_s": decisions["wall_s"],
            "estimated_ms": decisions["f_s"] * 1e3,
        }
    )
    return out.dropna(subset=["estimated_ms"]).reset_index(drop=True)


def best_series(curves: pd.DataFrame, task_id: int) -> pd.Series:
    """The running best of one task, indexed by trial (empty when it has no records)."""
    rows = curves[curves["task_id"] == task_id]
    return pd.Series(rows["best_s"].to_numpy(), index=rows["trial"].to_numpy(), dtype=float)
