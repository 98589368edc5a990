"""States per second of feature extraction (lowering + per-store features), uncached.

    python tests/bench/bench_features.py [--states 300] [--json]

For matmul 512^3 and the ResNet-18 conv (1x64x56x56, 64 filters, 3x3, pad 1):
random legal states (random steps on the initial state and on the default
schedule) and default_schedule states; lowering (unsimplified, as the cost model
reads it) and feature time are reported apart, and the cached rate (a state seen
again) for scale.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from compiler import ops, te
from compiler.cost_model import clear_cache, extract_features, state_features
from compiler.cost_model.features import _unroll_steps
from compiler.cost_model.store_features import program_features
from compiler.lower.lower import lower
from compiler.schedule.default import default_schedule
from compiler.schedule.random_steps import random_state
from compiler.schedule.state import State
from compiler.te.dag import ComputeDAG


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    for op, make in (("matmul512", matmul_dag), ("conv_resnet18", conv_dag)):
        dag = make()
        cases = {
            "random": random_states(dag, args.states, seed=0),
            "default": [default_schedule(dag) for _ in range(max(20, args.states // 10))],
        }
        for case, states in cases.items():
            for k, v in rates(states).items():
                figures[f"{op}_{case}_{k}"] = round(v, 3)
    out = sys.stderr if args.json else sys.stdout
    print(f"{'case':40} {'value':>10}", file=out)
    for k, v in figures.items():
        print(f"{k:40} {v:10.2f}", file=out)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
