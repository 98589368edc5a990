"""Measurement throughput: candidates built and measured per second, end to end.

Candidates are the default schedule with redrawn split factors (tests/bench/
candidates.py) for a 128^3 matmul and a ResNet-18 3x3 conv layer
(1x64x56x56, 64 filters, pad 1). Each scenario runs the full Measurer: the
builder pool (one process per core) compiles a batch, then the runners time
it (default MeasureSettings: warm-up, number raised to min_repeat_ms, 3
repeats, reference check) and every result is committed to a records
database. Builds and measurements of a batch never overlap (see
compiler/measure/measurer.py). Shares are fractions of wall time: building,
measuring, and the rest (candidate generation, database writes, waiting).

    python tests/bench/bench_measure.py [--small N] [--conv N] [--batch B] [--json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from candidates import conv_task, default_variants, matmul_task
from output import human_output, print_json

from compiler.measure import (
    LocalBuilder,
    LocalRunner,
    MeasureInput,
    Measurer,
    available_cores,
    make_devices,
)
from compiler.records import SQLiteStore
from compiler.task import SearchTask


def run_scenario(task: SearchTask, count: int, batch: int, devices: str, seed: int) -> dict:
    """Candidates per second and time shares of measuring `count` candidates of `task`."""
    states = default_variants(task, count, seed=seed)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SQLiteStore(Path(tmp) / "records.db") as store,
        LocalBuilder() as builder,
        LocalRunner(devices=make_devices(devices)) as runner,
    ):
        for w in builder.workers + runner.workers:
            w.wait_ready()  # process start-up is not part of the figure
        m = Measurer(builder=builder, runner=runner, store=store)
        start = time.perf_counter()
        for k in range(0, len(states), batch):
            m.measure([MeasureInput(task, s) for s in states[k : k + batch]])
        wall = time.perf_counter() - start
        valid = sum(r.error_kind is None for r in store.records())
    return {
        "candidates": len(states),
        "valid": valid,
        "candidates_per_s": len(states) / wall,
        "build_share": m.stats.build_s / wall,
        "measure_share": m.stats.measure_s / wall,
        "wait_share": max(0.0, 1 - (m.stats.build_s + m.stats.measure_s) / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=64, help="matmul candidates per scenario")
    parser.add_argument("--conv", type=int, default=16, help="conv candidates")
    parser.add_argument("--batch", type=int, default=16, help="candidates per batch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with human_output(args.json):
        cores = len(available_cores())
        small, conv = matmul_task(128, 128, 128), conv_task(1, 64, 56, 64, 3, 1)
        scenarios = {
            "small": run_scenario(small, args.small, args.batch, "default", seed=0),
            "small_per_core_devices": run_scenario(
                small, args.small, args.batch, "per-core", seed=1
            ),
            "conv": run_scenario(conv, args.conv, args.batch, "default", seed=0),
        }
        print_table(scenarios, cores, args.batch)
    if args.json:
        print_json(figures(scenarios, cores))


def figures(scenarios: dict[str, dict], cores: int) -> dict[str, float]:
    small = scenarios["small"]
    out = {
        f"candidates_per_s_{name}": round(s["candidates_per_s"], 2) for name, s in scenarios.items()
    }
    out["candidates_per_s_per_core_small"] = round(small["candidates_per_s"] / cores, 2)
    per_core = scenarios["small_per_core_devices"]["candidates_per_s"] / cores
    out["candidates_per_s_per_core_small_per_core_devices"] = round(per_core, 2)
    for share in ("build_share", "measure_share", "wait_share"):
        out[share] = round(small[share], 3)
    out["cores"] = cores
    return out


def print_table(scenarios: dict[str, dict], cores: int, batch: int) -> None:
    print(f"measurement throughput on {cores} cores, batches of {batch}")
    head = f"{'scenario':<24} {'cands':>5} {'valid':>5} {'cand/s':>7} {'/core':>6}"
    print(head + f" {'build':>6} {'measure':>8} {'wait':>6}")
    for name, s in scenarios.items():
        print(
            f"{name:<24} {s['candidates']:>5} {s['valid']:>5} {s['candidates_per_s']:>7.2f} "
            f"{s['candidates_per_s'] / cores:>6.2f} {s['build_share']:>6.1%} "
            f"{s['measure_share']:>8.1%} {s['wait_share']:>6.1%}"
        )


if __name__ == "__main__":
    main()
