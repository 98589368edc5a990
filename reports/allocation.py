"""Time allocation: where the tuning budget went, next to where the latency is.

Per scheduler round (the decision log): the task chosen and why (warmup,
gradient, epsilon, round-robin), its trials and errors, and the round's wall
time split into search, build, measure and the rest (scheduler, cost-model
training, bookkeeping). Per task: its share of the trials and of the tuning
time next to its share of the end-to-end latency. A task whose budget share is
far above its latency share got more than it is worth, and the reverse.
"""

from __future__ import annotations

import pandas as pd

ROUND_COLUMNS = [
    "round", "task_id", "task_name", "choice", "trials", "errors", "search_s", "build_s",
    "measure_s", "other_s", "round_s", "wall_s", "total_trials", "task_best_s", "estimated_ms",
]  # fmt: skip
TASK_COLUMNS = [
    "task_id", "name", "rounds", "trials", "budget_share", "tuning_s", "time_share",
    "latency_share", "budget_vs_latency",
]  # fmt: skip


def rounds_table(decisions: pd.DataFrame, tasks: pd.DataFrame) -> pd.DataFrame:
    """One row per round (ROUND_COLUMNS); `round_s` from consecutive `wall_s` stamps."""
    if decisions.empty:
        return pd.DataFrame(columns=ROUND_COLUMNS)
    d = decisions.sort_values("round").reset_index(drop=True)
    ids = tasks["id"].astype(int).tolist()
    out = pd.DataFrame(
        {
            "round": d["round"].astype(int),
            "task_id": d["task"].map(lambda k: ids[int(k)] if 0 <= int(k) < len(ids) else k),
            "task_name": d["task_name"],
            "choice": d["choice"],
            "trials": d["trials"].fillna(0).astype(int),
            "errors": d["errors"].fillna(0).astype(int),
            "search_s": d["search_s"],
            "build_s": d["build_s"],
            "measure_s": d["measure_s"],
            "wall_s": d["wall_s"],
            "total_trials": d["total_trials"],
            "task_best_s": d["task_best_s"],
            "estimated_ms": d["f_s"] * 1e3,
        }
    )
    started = out["wall_s"].shift(1).fillna(0.0)
    out["round_s"] = out["wall_s"] - started
    spent = out[["search_s", "build_s", "measure_s"]].fillna(0.0).sum(axis=1)
    out["other_s"] = (out["round_s"] - spent).clip(lower=0.0)
    return out[ROUND_COLUMNS]


def task_allocation(
    rounds: pd.DataFrame, layers: pd.DataFrame, records: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per task: rounds, trials and tuning seconds with their shares, beside latency share.

    Without a decision log the trials are the records' counts and the tuning time
    their build + run seconds (what a resumed records database can still tell).
    """
    out = layers[["task_id", "name", "latency_share"]].copy()
    if not rounds.empty:
        per = rounds.groupby("task_id").agg(
            rounds=("round", "size"),
            trials=("trials", "sum"),
            tuning_s=("round_s", "sum"),
        )
    else:
        per = _from_records(layers, records)
    per = per.reindex(out["task_id"]).fillna(0)
    out["rounds"] = per["rounds"].astype(int).to_numpy()
    out["trials"] = per["trials"].astype(int).to_numpy()
    out["tuning_s"] = per["tuning_s"].astype(float).to_numpy()
    out["budget_share"] = _share(out["trials"])
    out["time_share"] = _share(out["tuning_s"])
    out["budget_vs_latency"] = out["budget_share"] / out["latency_share"]
    return out[TASK_COLUMNS]


def _from_records(layers: pd.DataFrame, records: pd.DataFrame | None) -> pd.DataFrame:
    rows = []
    for task_id, key in zip(layers["task_id"], layers["workload_key"]):
        mine = records[records["workload_key"] == key] if records is not None else None
        n = 0 if mine is None else len(mine)
        seconds = 0.0 if mine is None else float((mine["build_s"] + mine["run_s"]).sum())
        rows.append({"task_id": task_id, "rounds": 0, "trials": n, "tuning_s": seconds})
    return pd.DataFrame(rows).set_index("task_id")


def _share(values: pd.Series) -> pd.Series:
    total = float(values.sum())
    return values / total if total > 0 else values * 0.0
