"""Template search quality: best GFLOP/s after N trials for each AutoTVM tuner (grid,
random, GA, XGBoost on the op's template) and for the sketch policy, on one thread.

Ops: matmul 1024^3 and the two ResNet-18 3x3 convs (1x64x56x56 -> 64 and
1x128x28x28 -> 128, pad 1, NCHW as `tune-op conv2d` gives them). All contenders
tune the same task from scratch (each its own records), rounds alternating
between them; the tuners start from a random config (the template's fallback
config is its own row). This machine drifts between fast and slow states and
other jobs share it, so the figures reported are not the costs measured while
tuning (shown in brackets) but each contender's best program after N trials
re-timed at the end, round-robin with the reference (numpy's sgemm for matmul,
onnxruntime's Conv for the convs, one thread): the median over rounds of
reference time / ours, and GFLOP/s = that ratio x the reference's GFLOP/s.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_templates.py \
        [--trials 64,256] [--ops matmul,conv56,conv28] [--tuners grid,random,ga,xgb] \
        [--seeds N] [--no-sketch] [--records DIR] [--json]

A tuner is a name of compiler/autotvm/tuners, or xgb:knob / xgb:itervar for the
XGBoost tuner on one kind of features (shown as xgb-knob / xgb-itervar).
`--seeds N` runs every contender with seeds 0..N-1 (one tuning run of all
contenders per seed, each re-timed after its run) and reports per contender the
median over seeds of the re-timed ratios, and per XGBoost tuner on how many
seeds it beat random. JSON: with one seed the keys are that run's figures; with
more, every figure is the median over seeds, `<key>_seeds` lists the per-seed
ratios and `<op>_<xgb>_beats_random_<N>` counts the seeds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from output import human_output, print_json
from references import ort_conv_call
from threadpoolctl import threadpool_limits
from timing import SETTLE_S, best_s

from compiler.autotvm import TemplatePolicy
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.measure import Measurer, MeasureSettings, create_builder, create_runner
from compiler.ops.workloads import op_workload
from compiler.policies import create as create_policy
from compiler.records import create as create_store
from compiler.runtime import empty, load, num_threads
from compiler.schedule.state import State
from compiler.task import SearchTask
from tasks.compare_spaces import Side, _alternate
from tasks.search_commands import cost_model

OPS = {
    "matmul": ("matmul", "1024,1024,1024"),
    "conv56": ("conv2d", "1,64,56,56,64,3,3,1,1"),
    "conv28": ("conv2d", "1,128,28,28,128,3,3,1,1"),
}
SETTINGS = MeasureSettings(threads=1, repeat=2)


def reference(op: str, shape: str):
    """(name, a call computing the op with the library) on one thread."""
    v = [int(x) for x in shape.split(",")]
    rng = np.random.default_rng(0)
    if op == "matmul":
        m, n, k = v
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        return "numpy", lambda: a @ b
    return "onnxruntime", ort_conv_call(v, rng)


def label(tuner: str) -> str:
    """The contender's name in tables and JSON keys: xgb:itervar -> xgb-itervar."""
    return tuner.replace(":", "-")


def template_policy(task: SearchTask, tuner: str, seed: int) -> TemplatePolicy:
    kind, _, feature = tuner.partition(":")
    kwargs = {"feature": feature} if feature else {}
    return TemplatePolicy(task.dag, tuner=kind, seed=seed, start_with_fallback=False, **kwargs)


def contenders(
    task: SearchTask, tuners: list[str], seed: int = 0, sketch: bool = True
) -> dict[str, object]:
    out: dict[str, object] = {label(t): template_policy(task, t, seed) for t in tuners}
    if sketch:
        out["sketch"] = create_policy("sketch", task.dag, model=cost_model("xgb"), seed=seed)
    return out


def best_state(side: Side, trials: int) -> tuple[float, State | None]:
    """(cost, program) of the cheapest valid candidate among the side's first `trials`."""
    pairs = [(c, st) for c, st in zip(side.costs_s[:trials], side.states) if math.isfinite(c)]
    return min(pairs, key=lambda p: p[0], default=(math.inf, None))


def retime(programs: dict[str, State], reference_call, rounds: int = 7) -> dict[str, float]:
    """Each program and the reference timed round-robin (best of 3 calls each, a pause
    before each); per program the median over rounds of reference time / its time."""
    rng = np.random.default_rng(1)
    calls, kernels = {}, []  # the kernels stay referenced: a bound call does not keep its code
    for key, state in programs.items():
        args = [empty(p.shape) for p in state.dag.placeholders]
        for a in args:
            a[...] = rng.random(a.shape, dtype=np.float32)
        out = empty(state.dag.outputs[0].shape)
        kernels.append(load(build(lower(state))))
        calls[key] = kernels[-1].bind(*args, out)
    ratios: dict[str, list[float]] = {k: [] for k in calls}
    with threadpool_limits(1), num_threads(1):
        for _ in range(rounds):
            for key, call in calls.items():
                time.sleep(SETTLE_S)
                ours = best_s(call)
                time.sleep(SETTLE_S)
                ratios[key].append(best_s(reference_call) / ours)
    return {k: statistics.median(v) for k, v in ratios.items()}


def run_op(
    name: str, checkpoints: list[int], tuners: list[str], tmp: Path, seed: int = 0,
    sketch: bool = True,
) -> dict[str, object]:  # fmt: skip
    op, shape = OPS[name]
    task = SearchTask(name, op_workload(op, shape))
    flops = task.flop_count
    policies = contenders(task, tuners, seed, sketch)
    paths = {k: tmp / f"{name}_{k}_{seed}.db" for k in policies}
    for path in paths.values():  # a fresh run, not a resumed one
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
    stores = {k: create_store("sqlite", path=p) for k, p in paths.items()}
    start = time.perf_counter()
    with (
        create_builder("local") as builder,
        create_runner("local", settings=SETTINGS, devices="default") as runner,
    ):
        sides = [
            Side(k, p, Measurer(builder=builder, runner=runner, store=stores[k]))  # type: ignore[arg-type]
            for k, p in policies.items()
        ]
        _alternate(sides, task, max(checkpoints), per_round=32)
    for store in stores.values():
        store.close()
    row: dict[str, object] = {"tuning_min": (time.perf_counter() - start) / 60}
    programs: dict[str, State] = {}
    fallback = policies[label(tuners[0])].template.fallback_state(task.dag)  # type: ignore[attr-defined]
    programs["fallback"] = fallback
    for s in sides:
        row[f"{s.name}_errors"] = sum(not math.isfinite(c) for c in s.costs_s)
        for cp in checkpoints:
            cost, state = best_state(s, cp)
            row[f"{s.name}_tuning_gflops_{cp}"] = flops / cost / 1e9 if state else 0.0
            if state is not None:
                programs[f"{s.name}_{cp}"] = state
    ref_name, ref_call = reference(op, shape)
    with threadpool_limits(1):
        ref_s = statistics.median(best_s(ref_call) for _ in range(5))
    ratios = retime(programs, ref_call)
    row[f"{ref_name}_gflops"] = flops / ref_s / 1e9
    for key, ratio in ratios.items():
        row[f"{key}_vs_{ref_name}"] = ratio
        row[f"{key}_gflops"] = ratio * flops / ref_s / 1e9
    return row


def print_table(name: str, row: dict, checkpoints: list[int], tuners: list[str]) -> None:
    ref = "numpy" if "numpy_gflops" in row else "onnxruntime"
    print(f"\n{name}: {ref} {row[f'{ref}_gflops']:.1f} GFLOP/s (1 thread); tuning took "
          f"{row['tuning_min']:.1f} min; template fallback {row['fallback_gflops']:.1f} GFLOP/s "
          f"({row[f'fallback_vs_{ref}']:.2f}x)")  # fmt: skip
    print("best program after N trials, re-timed interleaved with the reference: "
          f"GFLOP/s (x {ref}) [as measured while tuning]")  # fmt: skip
    print(
        f"{'contender':<12}"
        + "".join(f"{'@' + str(c):>26}" for c in checkpoints)
        + f"{'errors':>8}"
    )
    for who in [label(t) for t in tuners] + ["sketch"]:
        if f"{who}_errors" not in row:
            continue
        cells = ""
        for c in checkpoints:
            key = f"{who}_{c}"
            if f"{key}_gflops" in row:
                got = f"{row[f'{key}_gflops']:.1f} ({row[f'{key}_vs_{ref}']:.2f}x)"
                cells += f"{got + ' [' + format(row[f'{who}_tuning_gflops_{c}'], '.0f') + ']':>26}"
            else:
                cells += f"{'-':>26}"
        print(f"{who:<12}{cells}{row[f'{who}_errors']:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="64,256")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--tuners", default="grid,random,ga,xgb")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per contender")
    parser.add_argument("--no-sketch", action="store_true", help="template tuners only")
    parser.add_argument("--records", help="keep each run's records in this folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    checkpoints = sorted(int(x) for x in args.trials.split(","))
    tuners = args.tuners.split(",")
    figures: dict[str, object] = {"threads": 1, "seeds": args.seeds}
    with human_output(args.json), tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.records or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.ops.split(","):
            runs = [
                run_op(name, checkpoints, tuners, folder, seed, not args.no_sketch)
                for seed in range(args.seeds)
            ]
            row = over_seeds(runs, tuners, checkpoints)
            figures.update({f"{name}_{k}": v for k, v in row.items()})
            print_table(name, row, checkpoints, tuners)
            print_seeds(row, tuners, checkpoints, args.seeds)
    if args.json:
        print_json(figures)
    return 0


def over_seeds(runs: list[dict], tuners: list[str], checkpoints: list[int]) -> dict[str, object]:
    """One run: its row. More: the median of every figure over the runs, the per-seed
    ratios (`<key>_seeds`) and per XGBoost tuner how many seeds it beat random."""
    if len(runs) == 1:
        return runs[0]
    keys = [k for k in runs[0] if all(k in r for r in runs)]
    row: dict[str, object] = {k: statistics.median(r[k] for r in runs) for k in keys}
    for key in [k for k in keys if "_vs_" in k]:
        row[f"{key}_seeds"] = [r[key] for r in runs]
    ref = "numpy" if "numpy_gflops" in row else "onnxruntime"
    if "random" in tuners:
        for who in [label(t) for t in tuners if t.startswith("xgb")]:
            for cp in checkpoints:
                wins = sum(
                    r.get(f"{who}_{cp}_vs_{ref}", 0.0) > r.get(f"random_{cp}_vs_{ref}", 0.0)
                    for r in runs
                )
                row[f"{who}_beats_random_{cp}"] = wins
    return row


def print_seeds(row: dict, tuners: list[str], checkpoints: list[int], seeds: int) -> None:
    if seeds < 2:
        return
    ref = "numpy" if "numpy_gflops" in row else "onnxruntime"
    print(f"(medians over {seeds} seeds; per-seed ratios x {ref}:)")
    for who in [label(t) for t in tuners] + ["sketch"]:
        for cp in checkpoints:
            per_seed = row.get(f"{who}_{cp}_vs_{ref}_seeds")
            if per_seed is not None:
                wins = row.get(f"{who}_beats_random_{cp}")
                beat = "" if wins is None else f"  beat random on {wins}/{seeds} seeds"
                print(f"  {who:<12}@{cp:<5}" + " ".join(f"{x:.2f}" for x in per_seed) + beat)


if __name__ == "__main__":
    sys.exit(main())
