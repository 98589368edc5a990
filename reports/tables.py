"""The per-layer table: what each task costs, how fast it runs, how far it is from the machine.

One row per tuning task (a distinct workload; `weight` is how often the network
runs it). Latency is the best valid record's mean cost; untuned tasks use the
default schedule's time from the profile when there is one. The end-to-end
estimate is the sum of weight x latency over tasks, so `weighted_s` adds up to
it and `latency_share` adds up to 1.

The onnxruntime columns compare like with like: `onnxruntime_s` (its nodes that compute
the task) over `network_s` (our kernels of the task), both per inference inside
whole-network runs (models/ort_profile.py), never over our isolated best. Where
onnxruntime computes the task together with another one, or a node next to it could
not be placed, `onnxruntime_s` is empty and `onnxruntime_note` says why; so it is for
every task of a profile written before these columns.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from compiler.measure.peak import Peak

BYTES_PER_ELEMENT = 4  # float32

LAYER_COLUMNS = [
    "task_id", "name", "ops", "shapes", "weight", "flops", "trials", "errors", "best_s",
    "latency_s", "gflops", "peak_share", "intensity", "bandwidth_gbytes_s", "roofline_gflops",
    "roofline_share",
    "weighted_s", "latency_share", "default_s", "speedup_vs_default", "network_s",
    "onnxruntime_s", "onnxruntime_vs_ours", "onnxruntime_note", "workload_key",
]  # fmt: skip
# profile.json's times per task (models/ort_profile.py)
PROFILE_TIMES = ["tuned_s", "default_s", "network_s", "onnxruntime_s"]
NO_NETWORK_TIME = (
    "not shown: a profile written before 2026-12-07 (no in-network time of ours, and its "
    "onnxruntime times came from a node mapping that misplaced nodes)"
)


def compulsory_bytes(shapes: list[list[int]]) -> int:
    """Bytes every run must move at least: each input read once, the output written once."""
    return sum(int(np.prod(s, dtype=np.int64)) for s in shapes) * BYTES_PER_ELEMENT


def describe_shapes(shapes: list[list[int]]) -> str:
    """`1x784, 784x512, 512 -> 1x512` (inputs, then the output)."""
    text = ["x".join(str(d) for d in s) or "scalar" for s in shapes]
    return ", ".join(text[:-1]) + " -> " + text[-1] if len(text) > 1 else "".join(text)


def record_stats(records: pd.DataFrame) -> pd.DataFrame:
    """Per workload key: trials (records), errors, best valid mean cost."""
    if records.empty:
        return pd.DataFrame(columns=["trials", "errors", "best_s"])
    grouped = records.groupby("workload_key")
    return pd.DataFrame(
        {
            "trials": grouped.size(),
            "errors": grouped["error_kind"].apply(lambda s: int(s.notna().sum())),
            "best_s": grouped["mean_cost_s"].min(),
        }
    )


def profile_by_task(profile: dict | None) -> pd.DataFrame:
    """profile.json's per-task times (PROFILE_TIMES, NaN where missing or null) and
    onnxruntime note indexed by task id (empty without a profile)."""
    rows = (profile or {}).get("tasks") or []
    frame = pd.DataFrame(rows, columns=["id", *PROFILE_TIMES, "onnxruntime_note"])
    frame[PROFILE_TIMES] = frame[PROFILE_TIMES].apply(pd.to_numeric, errors="coerce")
    if rows and not any(isinstance(r, dict) and "network_s" in r for r in rows):
        frame["onnxruntime_s"] = np.nan  # an older profile: onnxruntime times not trusted
        frame["onnxruntime_note"] = NO_NETWORK_TIME
    frame["onnxruntime_note"] = frame["onnxruntime_note"].astype(object).fillna("").astype(str)
    return frame.set_index("id")


def layer_table(
    tasks: pd.DataFrame, records: pd.DataFrame, peak: Peak, profile: dict | None = None
) -> pd.DataFrame:
    """The per-layer table (LAYER_COLUMNS; diagnosis columns are added by diagnosis.py)."""
    stats = record_stats(records)
    prof = profile_by_task(profile)
    out = pd.DataFrame(
        {
            "task_id": tasks["id"].astype(int),
            "name": tasks["name"],
            "ops": tasks["ops"].map(lambda ops: "+".join(ops)),
            "shapes": tasks["shapes"].map(describe_shapes),
            "weight": tasks["weight"].astype(int),
            "flops": tasks["flops"].astype("int64"),
            "workload_key": tasks["workload_key"],
        }
    )
    keyed = stats.reindex(out["workload_key"])
    out["trials"] = keyed["trials"].fillna(0).astype(int).to_numpy()
    out["errors"] = keyed["errors"].fillna(0).astype(int).to_numpy()
    out["best_s"] = keyed["best_s"].astype(float).to_numpy()
    by_id = prof.reindex(out["task_id"])
    out["default_s"] = by_id["default_s"].to_numpy(dtype=float)
    out["network_s"] = by_id["network_s"].to_numpy(dtype=float)
    out["onnxruntime_s"] = by_id["onnxruntime_s"].to_numpy(dtype=float)
    out["onnxruntime_note"] = by_id["onnxruntime_note"].fillna("").to_numpy(dtype=object)
    tuned_profiled = by_id["tuned_s"].to_numpy(dtype=float)
    out["latency_s"] = out["best_s"].fillna(out["default_s"])
    _add_speed(out, tasks, peak)
    _add_shares(out)
    # speedup from one profile run when both were timed there (same conditions), else records
    tuned = np.where(np.isfinite(tuned_profiled), tuned_profiled, out["best_s"])
    out["speedup_vs_default"] = out["default_s"] / tuned
    # like with like: both per inference inside whole-network runs, never onnxruntime's
    # in-network time over our isolated best (weighted_s)
    out["onnxruntime_vs_ours"] = out["onnxruntime_s"] / out["network_s"]
    return out[LAYER_COLUMNS]


def _add_speed(out: pd.DataFrame, tasks: pd.DataFrame, peak: Peak) -> None:
    out["gflops"] = out["flops"] / out["latency_s"] / 1e9
    out["peak_share"] = out["gflops"] / peak.gflops
    byte_counts = tasks["shapes"].map(compulsory_bytes).to_numpy(dtype=float)
    out["intensity"] = out["flops"].to_numpy(dtype=float) / np.maximum(byte_counts, 1.0)
    # a working set that fits in the caches is bounded by cache bandwidth, not DRAM's
    out["bandwidth_gbytes_s"] = [peak.bandwidth_gbytes_s(b) for b in byte_counts]
    out["roofline_gflops"] = [
        peak.roofline_gflops(i, b) for i, b in zip(out["intensity"], byte_counts)
    ]
    out["roofline_share"] = out["gflops"] / out["roofline_gflops"]


def _add_shares(out: pd.DataFrame) -> None:
    out["weighted_s"] = out["weight"] * out["latency_s"]
    total = estimated_s(out)
    out["latency_share"] = out["weighted_s"] / total if total > 0 else math.nan


def estimated_s(layers: pd.DataFrame) -> float:
    """End-to-end estimate: the sum of weighted latencies of the tasks that have one."""
    return float(layers["weighted_s"].sum(min_count=1)) if len(layers) else math.nan


def summary(layers: pd.DataFrame, meta: dict, bench: dict | None, peak: Peak) -> dict:
    """The headline numbers of a run (one flat dict; times in the unit their name says)."""
    bench = bench or {}
    return {
        "model": meta.get("model", ""),
        "target": meta.get("target", ""),
        "policy": meta.get("policy", ""),
        "scheduler": meta.get("scheduler", ""),
        "threads": meta.get("threads"),
        "started": meta.get("started"),
        "finished": meta.get("finished"),
        "tasks": len(layers),
        "tuned_tasks": int(layers["best_s"].notna().sum()),
        "trials": int(layers["trials"].sum()),
        "estimated_ms": estimated_s(layers) * 1e3,
        "latency_ms": bench.get("latency_ms"),
        "onnxruntime_latency_ms": bench.get("onnxruntime_latency_ms"),
        "max_rel_err": bench.get("max_rel_err"),
        "peak_gflops": peak.gflops,
        "peak_gbytes_s": peak.gbytes_s,
        "cache_gbytes_s": peak.cache_gbytes_s,
    }
