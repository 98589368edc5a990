"""States per second of feature extraction (lowering + per-store features), uncached.

    python tests/bench/bench_features.py [--states 300] [--ops matmul512,...] [--json]

For matmul 512^3 and the ResNet-18 conv (1x64x56x56, 64 filters, 3x3, pad 1):
random legal states (random steps on the initial state and on the default
schedule) and default_schedule states; for the ResNet-18 conv28 as networks run
it, blocked (`conv28c`) and by Winograd F(4,3) (`conv28w`): programs sampled from
the sketches as the search samples them (`sketch`). Lowering (unsimplified, as
the cost model reads it) and feature time are reported apart, and the cached
rate (a state seen again) for scale.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from output import human_output, print_json

from compiler import ops, te
from compiler.cost_model import clear_cache, extract_features, state_features
from compiler.cost_model.features import _unroll_steps
from compiler.cost_model.store_features import program_features
from compiler.lower.lower import lower
from compiler.ops.workloads import op_workload
from compiler.schedule.default import default_schedule
from compiler.schedule.random_steps import random_state
from compiler.schedule.state import State
from compiler.search.annotate import AnnotateConfig, sample_population
from compiler.search.sketch import generate_sketches
from compiler.te.dag import ComputeDAG

CONV28 = "1,128,28,28,128,3,3,1,1"


def matmul_dag() -> ComputeDAG:
    a, b = te.placeholder((512, 512), name="A"), te.placeholder((512, 512), name="B")
    return ComputeDAG([ops.matmul(a, b)])


def conv_dag() -> ComputeDAG:
    x = te.placeholder((1, 64, 56, 56), name="X")
    w = te.placeholder((64, 64, 3, 3), name="W")
    return ComputeDAG([ops.conv2d_nchw(x, w, stride=1, padding=1)])


def random_states(dag: ComputeDAG, n: int, seed: int) -> list[State]:
    rng = np.random.default_rng(seed)
    bases = [State.initial(dag), default_schedule(dag)]
    out = []
    for _ in range(n):
        base = bases[int(rng.integers(2))]
        out.append(random_state(base, rng, len(base.steps) + int(rng.integers(1, 9))))
    return out


def sketch_states(dag: ComputeDAG, n: int, seed: int) -> list[State]:
    """Programs sampled from the sketches, as the search's initial population."""
    return sample_population(
        generate_sketches(dag), n, np.random.default_rng(seed), AnnotateConfig()
    )


def cases_of(op: str, n: int) -> dict[str, list[State]]:
    if op in ("conv28c", "conv28w"):
        kind = "conv2d_nchwc" if op == "conv28c" else "conv2d_winograd"
        return {"sketch": sketch_states(op_workload(kind, CONV28), n, seed=0)}
    dag = matmul_dag() if op == "matmul512" else conv_dag()
    return {
        "random": random_states(dag, n, seed=0),
        "default": [default_schedule(dag) for _ in range(max(20, n // 10))],
    }


def rates(states: list[State]) -> dict[str, float]:
    """States/s end to end, and ms/state of lowering and of the features alone."""
    t = time.perf_counter()
    for s in states:  # uncached: the default case repeats one state
        clear_cache()
        state_features(s)
    total_s = time.perf_counter() - t
    extract_features(states)  # fills the cache with every state
    t = time.perf_counter()
    extract_features(states)
    cached_s = time.perf_counter() - t
    t = time.perf_counter()
    funcs = [lower(s, simplify=False) for s in states]  # what the cost model reads
    lower_s = time.perf_counter() - t
    t = time.perf_counter()
    for s, f in zip(states, funcs):
        program_features(f, _unroll_steps(s))
    feat_s = time.perf_counter() - t
    n = len(states)
    return {
        "states_per_s": n / total_s,
        "lower_ms": 1e3 * lower_s / n,
        "features_ms": 1e3 * feat_s / n,
        "cached_states_per_s": n / max(cached_s, 1e-9),
    }


OPS = ("matmul512", "conv_resnet18", "conv28c", "conv28w")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=300)
    parser.add_argument("--ops", default="matmul512,conv_resnet18,conv28c,conv28w")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for op in args.ops.split(","):
        if op not in OPS:
            parser.error(f"--ops: unknown op {op!r} (choose from {', '.join(OPS)})")
    figures: dict[str, float] = {}
    with human_output(args.json):
        for op in args.ops.split(","):
            for case, states in cases_of(op, args.states).items():
                for k, v in rates(states).items():
                    figures[f"{op}_{case}_{k}"] = round(v, 3)
        print(f"{'case':40} {'value':>10}")
        for k, v in figures.items():
            print(f"{k:40} {v:10.2f}")
    if args.json:
        print_json(figures)


if __name__ == "__main__":
    main()
