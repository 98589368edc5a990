"""Would the search disturb a 1-thread measurement if both ran at once?

The Measurer never overlaps building or searching with measuring. With one
measuring thread on this 2-core machine the other core idles while a round is
timed, and the search (Python feature extraction, the bulk of it) could run
there instead. This script times compiled kernels (each op's default
schedule, 1 thread) alone and with a spawned process extracting features of
freshly sampled conv programs on the other core, alternating round by round,
and prints the median ratio loaded / alone per kernel (1.00: no interference).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_overlap.py \
        [--ops conv28c,conv56c,matmul] [--rounds 6] [--json]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np
from output import human_output, print_json
from timing import best_s

from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops.workloads import op_workload
from compiler.runtime import load, set_num_threads
from compiler.schedule.default import default_schedule

OPS = {
    "conv28c": ("conv2d_nchwc", "1,128,28,28,128,3,3,1,1"),
    "conv56c": ("conv2d_nchwc", "1,64,56,56,64,3,3,1,1"),
    "matmul": ("matmul", "1024,1024,1024"),
}
LOAD_START_S = 4.0  # the loading process imports and starts extracting by then


def extract_until(stop) -> None:
    """The load: feature extraction of fresh conv28c programs, one core, until stopped."""
    os.environ["SKETCHTUNE_FEATURE_WORKERS"] = "0"
    from compiler.cost_model.features import clear_cache, extract_features
    from compiler.search.annotate import AnnotateConfig, sample_population
    from compiler.search.sketch import generate_sketches

    sketches = generate_sketches(op_workload(*OPS["conv28c"]), cores=2)
    rng = np.random.default_rng(1)
    while not stop.is_set():
        clear_cache()
        extract_features(sample_population(sketches, 24, rng, AnnotateConfig(cores=2)))


def kernel_call(op: str, shape: str):
    dag = op_workload(op, shape)
    kernel = load(build(lower(default_schedule(dag))))
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(p.shape).astype("float32") for p in dag.placeholders]
    out = np.zeros(tuple(int(x) for x in dag.outputs[0].shape), "float32")
    return lambda: kernel(*args, out)


def loaded_over_alone(calls: dict, rounds: int) -> dict[str, list[float]]:
    """Per kernel, per round: best time with the load running / best time without."""
    ctx = mp.get_context("spawn")
    ratios: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        alone = {name: min(best_s(fn, 10) for _ in range(3)) for name, fn in calls.items()}
        stop = ctx.Event()
        proc = ctx.Process(target=extract_until, args=(stop,))
        proc.start()
        time.sleep(LOAD_START_S)
        for name, fn in calls.items():
            ratios[name].append(min(best_s(fn, 10) for _ in range(3)) / alone[name])
        stop.set()
        proc.join()
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="conv28c,conv56c,matmul")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with human_output(args.json):
        set_num_threads(1)
        calls = {name: kernel_call(*OPS[name]) for name in args.ops.split(",")}
        for fn in calls.values():
            fn()
        ratios = loaded_over_alone(calls, args.rounds)
        figures = {
            f"{name}_loaded_over_alone": {
                "median": statistics.median(r),
                "min": min(r),
                "max": max(r),
            }
            for name, r in ratios.items()
        }
        for key, value in figures.items():
            spread = f"range {value['min']:.3f}-{value['max']:.3f}"
            print(f"{key}: median {value['median']:.3f} ({spread})")
    if args.json:
        print_json(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
