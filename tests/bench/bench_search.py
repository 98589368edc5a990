"""Search quality: the best GFLOP/s found by `sketch` and by `random` after N trials.

For matmul 1024^3, dense 1x512x1000 and the two ResNet-18 3x3 convs, on one
thread: the reference (numpy's sgemm for the matrix ops, onnxruntime's Conv
for the convs, each timed in this run; densec, conv56c and conv28c are the ops
with their constant weight laid out as networks run them), and the best program each policy found
after every checkpoint of trials; also how many trials `sketch` needed to reach
the best that `random` found in all of its trials, and the share of wall time
spent searching (everything but building and measuring: proposing candidates,
features, model training, start-up), per op and averaged over the ops
(`search_overhead_share`: of the `sketch` policy when it ran, else of all). The
search that ran beside the measurements (compiler/search/tune.py: search
ahead) is inside their wall time; `<policy>_ahead_s` says how much it was, and
the policy `sketch+serial` searches only between rounds, as Ansor does.
Last, every policy's best program and the op's default schedule
(`default_side_by_side`) are timed again side by side with the reference, all
of them interleaved round by round (each round starting with the next
contender) and each as the fastest of a few calls (`<policy>_side_by_side`:
reference time / ours, > 1: ours is faster): the tuning figures are means taken
while the next round is searched on the other core, the reference's the fastest
of 25 calls. (Until 2026-12-04 each policy was re-timed alone against the
reference, one after the other; on the Zen 4 machine the same program re-timed
that way four times in a row gave 0.92-0.96.)

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_search.py \
        [--trials 64,256,1000] [--ops matmul,dense,densec,conv56,conv28,conv56c,conv28c] [--policies sketch,random,sketch+default,sketch+serial,sketch+quota,sketch+drawn,sketch+no-transplant]
        [--vector-cap 16] [--crossover 0.0] [--population 512] [--seed 0]
        [--without-rule multi_level_tiling_with_unblocking] [--work-dir DIR] [--json]
    ... --ops conv28c --policies sketch,random --seed 0 --retime DIR   # re-time a kept run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from output import human_output, print_json
from references import ort_conv_call
from threadpoolctl import threadpool_limits
from timing import best_s, interleaved_all, median_ratio

from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.measure import Measurer, MeasureSettings, create_builder, create_runner
from compiler.ops.workloads import op_workload
from compiler.policies import create as create_policy
from compiler.records import create as create_store
from compiler.runtime import aligned, load, num_threads
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import steps_from_json
from compiler.search.sketch import RULES
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler

OPS = {
    "matmul": ("matmul", "1024,1024,1024"),
    "dense": ("dense", "1,512,1000"),
    # the same product as networks run it: ONNX Gemm's constant weight is transposed at
    # import, so the weight is [IN, OUT] and the output's loop reads it contiguously
    "densec": ("matmul", "1,1000,512"),
    "conv56": ("conv2d", "1,64,56,56,64,3,3,1,1"),
    "conv28": ("conv2d", "1,128,28,28,128,3,3,1,1"),
    # the same convs as networks run them: the weight packed in 16-filter blocks at
    # compile time (onnxruntime's Conv packs its constant weight too, for MLAS's NCHWc)
    "conv56c": ("conv2d_nchwc", "1,64,56,56,64,3,3,1,1"),
    "conv28c": ("conv2d_nchwc", "1,128,28,28,128,3,3,1,1"),
    # the same convs by Winograd F(4x4, 3x3) (compiler/ops/winograd.py); their GFLOP/s
    # are the direct conv's flops over the time (effective), as onnxruntime's are
    "conv56w": ("conv2d_winograd", "1,64,56,56,64,3,3,1,1,4"),
    "conv28w": ("conv2d_winograd", "1,128,28,28,128,3,3,1,1,4"),
}


def conv_args(shape: str) -> list[int]:
    """N,C,H,W,F,KH,KW,STRIDE,PAD of a conv op's shape (a Winograd tile size dropped)."""
    return [int(x) for x in shape.split(",")][:9]


def effective_flops(task: SearchTask, op: str, shape: str) -> float:
    """The flops GFLOP/s are quoted for: a Winograd conv's are its direct conv's."""
    if op == "conv2d_winograd":
        n, c, h, w, f, kh, kw, stride, pad = conv_args(shape)
        ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        return 2.0 * n * f * ho * wo * c * kh * kw
    return float(task.flop_count)


def numpy_call(op: str, shape: str):
    """numpy's product for the matrix op `op` of `shape`, and its flop count."""
    v = [int(x) for x in shape.split(",")]
    rng = np.random.default_rng(0)
    if op == "matmul":
        m, n, k = v
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        return (lambda: a @ b), 2.0 * m * n * k
    batch, inp, out = v
    x, w = rng.random((batch, inp), dtype=np.float32), rng.random((out, inp), dtype=np.float32)
    return (lambda: x @ w.T), 2.0 * batch * inp * out


def numpy_gflops(op: str, shape: str) -> float:
    fn, flops = numpy_call(op, shape)
    with threadpool_limits(1):
        return flops / min(best_s(fn, 5) for _ in range(5)) / 1e9


def onnxruntime_conv_gflops(shape: str) -> float:
    v = conv_args(shape)
    n, c, h, w, f, kh, kw, stride, pad = v
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    call = ort_conv_call(v, np.random.default_rng(0))
    flops = 2.0 * n * f * ho * wo * c * kh * kw
    return flops / min(best_s(call, 5) for _ in range(5)) / 1e9


def reference_call(op: str, shape: str):
    """The reference library's call for the op (onnxruntime's Conv, numpy's product)."""
    if op.startswith("conv2d"):
        return ort_conv_call(conv_args(shape), np.random.default_rng(0))
    return numpy_call(op, shape)[0]


def side_by_side(
    task: SearchTask, best_steps: dict[str, list[dict]], reference, rounds: int = 21
) -> dict[str, float]:
    """Each policy's best program (`best_steps`) and the op's default schedule
    (`default`) re-timed against the reference, all of them interleaved round by
    round (each round starting with the next contender), each as the fastest of a few
    calls: per contender, the median over rounds of reference time / ours (> 1: ours
    is faster). The tuning figures are a mean over repeats taken while the next round
    was searched on the other core, the reference's the fastest of 25 calls; this
    times all of them the same way, in the same minutes."""
    rng = np.random.default_rng(0)
    states = {p: State.replay(task.dag, steps_from_json(st)) for p, st in best_steps.items()}
    states["default"] = default_schedule(task.dag)
    calls = []
    for state in states.values():
        kernel = load(build(lower(state)))
        arrays = [
            aligned(rng.standard_normal(p.shape).astype(np.dtype(p.dtype))) for p in kernel.params
        ]
        calls.append(kernel.bind(*arrays))
    with threadpool_limits(1), num_threads(1):
        *ours, theirs = interleaved_all([*calls, reference], rounds, repeat=5)
    return {p: median_ratio(o, theirs) for p, o in zip(states, ours)}


def fastest_steps(records: list) -> list[dict] | None:
    """The steps of the fastest valid record, None if there is none."""
    ok = [r for r in records if r.error_kind is None]
    return min(ok, key=lambda r: r.mean_cost_s).steps if ok else None


def best_recorded(db: Path, workload_key: str) -> list[dict] | None:
    """The steps of the fastest valid record in an earlier run's database."""
    store = create_store("sqlite", path=db)
    try:
        return fastest_steps(list(store.records(workload_key)))
    finally:
        store.close()


def retime(args: argparse.Namespace) -> dict[str, object] | None:
    """`--retime DIR`: each policy's best program of an earlier run kept in DIR
    (`--work-dir`), the default schedule and the reference, side by side again
    (None if a policy's database is not there)."""
    figures: dict[str, object] = {}
    for name in args.ops.split(","):
        op, shape = OPS[name]
        task = SearchTask(name, op_workload(op, shape))
        best = {}
        for p in args.policies.split(","):
            db = args.retime / f"{name}_{p}_s{args.seed}.db"
            if not db.exists():
                print(f"--retime: no {db}", file=sys.stderr)
                return None
            if (steps := best_recorded(db, task.workload_key)) is not None:
                best[p] = steps
        ratios = side_by_side(task, best, reference_call(op, shape))
        figures[name] = {f"{p}_side_by_side": round(r, 3) for p, r in ratios.items()}
        print(name, json.dumps(figures[name]), flush=True)
    return figures


def search(
    task: SearchTask,
    policy: str,
    checkpoints: list[int],
    db: Path,
    seed: int = 0,
    flops: float | None = None,
    **options: object,
) -> dict[str, object]:
    """Best GFLOP/s after each checkpoint, the trials history and the search share;
    `options` go to the sketch policy (vector_cap, crossover, population); GFLOP/s are
    `flops` (default: the task's) over the time."""
    flops = flops or task.flop_count
    db.unlink(missing_ok=True)  # a fresh start, also in a kept --work-dir
    store = create_store("sqlite", path=db)
    kind, _, seeded = policy.partition("+")  # "sketch+default": the default schedule first
    extra = dict(options) if kind == "sketch" else {}
    if seeded == "quota":  # "sketch+quota": one best-predicted program per absent sketch
        extra["sketch_quota"] = 1
    if seeded == "drawn":  # "sketch+drawn": half the untrained first round as drawn
        extra["untrained_as_drawn"] = 0.5
    if seeded == "no-transplant":  # Ansor's: no program moves to another sketch
        extra["transplants"] = False
    if seeded == "fixed":  # the population not sized by the search's cost (budget.py)
        extra["search_share"] = None
    pol = create_policy(kind, task.dag, model=_model(), seed=seed, **extra)
    baseline = default_schedule(task.dag) if seeded == "default" else None
    history: list[tuple[int, float]] = []
    populations: list[int] = []  # each round's evolution (SketchPolicy.last_population)
    phases = dict.fromkeys(("search", "learn", "build", "measure"), 0.0)
    ahead_s = 0.0  # search run beside the measurements (in neither phase's wall time)

    trials = 0

    def on_round(line: dict) -> None:
        nonlocal ahead_s, trials
        for key in phases:
            phases[key] += line[f"{key}_s"]
        ahead_s += line["ahead_s"]
        trials += line["trials"]
        best = line["task_best_s"]
        history.append((trials, float("inf") if best is None else best))
        populations.append(getattr(pol, "last_population", 0))

    start = time.perf_counter()
    with (
        create_builder("local") as builder,
        create_runner("local", settings=MeasureSettings(threads=1), devices="default") as runner,
    ):
        measurer = Measurer(builder=builder, runner=runner, store=store)
        # tune-op's loop: a task scheduler of one task
        sched = TaskScheduler([task], [pol], per_round=64, baselines=[baseline])
        sched.tune(measurer, max(checkpoints), on_round, ahead=seeded != "serial")
    wall = time.perf_counter() - start
    records = list(store.records(task.workload_key))
    store.close()
    first = records[0] if records else None
    best_steps = fastest_steps(records)
    best_at = {}
    for cp in checkpoints:
        costs = [c for t, c in history if t <= cp]
        best_at[cp] = flops / min(costs) / 1e9 if costs and min(costs) < float("inf") else 0.0
    tuning_s = phases["build"] + phases["measure"]
    phases["other"] = wall - sum(phases.values())  # start-up, records, reference check
    out = {
        "gflops": best_at,
        "history": history,
        "search_share": 1.0 - tuning_s / wall,
        "phase_s": {k: round(v, 1) for k, v in phases.items()},
        "ahead_s": round(ahead_s, 1),
        "populations": populations,
        "best_steps": best_steps,
    }
    if baseline is not None and first is not None and first.error_kind is None:
        out["default_gflops"] = flops / first.mean_cost_s / 1e9  # measured first
    return out


def _model():
    from tasks.search_commands import cost_model

    return cost_model("xgb")


def trials_to_reach(history: list[tuple[int, float]], target_cost: float) -> int | None:
    for trials, cost in history:
        if cost <= target_cost * 1.0001:
            return trials
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="64,256,1000")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument(
        "--policies",
        default="sketch,random",
        help="sketch, random, sketch+default (the op's default schedule measured first), "
        "sketch+quota (evolution.EvolutionConfig.sketch_quota = 1), "
        "sketch+serial (no search ahead: each round searched after the last is measured), "
        "sketch+drawn (evolution.EvolutionConfig.untrained_as_drawn = 0.5), "
        "sketch+no-transplant (the best program's tile sizes never tried in other sketches), "
        "sketch+fixed (the population always --population, whatever the search costs)",
    )
    parser.add_argument("--vector-cap", type=int, default=16, help="sketch: widest vector loop")
    parser.add_argument("--crossover", type=float, default=0.0, help="sketch: crossover share")
    parser.add_argument(
        "--population", type=int, default=512, help="sketch: largest evolution population"
    )
    parser.add_argument("--seed", type=int, default=0, help="the policies' random seed")
    parser.add_argument(
        "--without-rule",
        default="",
        help="sketch rules to leave out, by name (compiler/search/sketch.py RULES), comma-separated",
    )
    parser.add_argument(
        "--work-dir", type=Path, help="keep the records databases here (default: a temporary dir)"
    )
    parser.add_argument(
        "--retime",
        type=Path,
        help="no search: re-time the best programs kept in this --work-dir of an earlier run",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for name in filter(None, args.without_rule.split(",")):
        if name not in {r.name for r in RULES}:
            parser.error(f"--without-rule: no sketch rule named {name!r}")
        RULES[:] = [r for r in RULES if r.name != name]
    with human_output(args.json):
        figures = retime(args) if args.retime is not None else search_all(args)
    if figures is None:
        return 2
    if args.json:
        print_json(figures)
    return 0


def search_all(args: argparse.Namespace) -> dict[str, object]:
    """Every op searched by every policy; prints a line per op."""
    sketch_options = {
        "vector_cap": args.vector_cap,
        "crossover": args.crossover,
        "population": args.population,
    }
    checkpoints = sorted(int(x) for x in args.trials.split(","))
    figures: dict[str, object] = {}
    shares = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.work_dir or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for name in args.ops.split(","):
            op, shape = OPS[name]
            task = SearchTask(name, op_workload(op, shape))
            row: dict[str, object] = {}
            if op.startswith("conv2d"):
                row["onnxruntime_gflops"] = onnxruntime_conv_gflops(shape)
            else:
                row["numpy_gflops"] = numpy_gflops(op, shape)
            runs = {
                p: search(
                    task,
                    p,
                    checkpoints,
                    tmp / f"{name}_{p}_s{args.seed}.db",
                    args.seed,
                    effective_flops(task, op, shape),
                    **sketch_options,
                )
                for p in args.policies.split(",")
            }
            for p, got in runs.items():
                row[f"{p}_gflops"] = {str(k): v for k, v in got["gflops"].items()}  # type: ignore[union-attr]
                if "default_gflops" in got:
                    row["default_gflops"] = got["default_gflops"]
                if p.startswith("sketch"):  # the model-guided search's overhead
                    if p == "sketch" or "sketch" not in runs:
                        shares.append(got["search_share"])
                    row[f"{p}_search_share"] = round(got["search_share"], 3)  # type: ignore[arg-type]
                    row[f"{p}_phase_s"] = got["phase_s"]
                    row[f"{p}_ahead_s"] = got["ahead_s"]
                    row[f"{p}_populations"] = got["populations"]
            best = {p: got["best_steps"] for p, got in runs.items() if got["best_steps"]}
            ratios = side_by_side(task, best, reference_call(op, shape))  # type: ignore[arg-type]
            for p, ratio in ratios.items():  # the best programs against the reference
                row[f"{p}_side_by_side"] = round(ratio, 3)
            if "random" in runs:
                random_best = min(c for _, c in runs["random"]["history"])  # type: ignore[union-attr]
                for p in runs:
                    if p.startswith("sketch"):
                        row[f"{p}_trials_to_random_best"] = trials_to_reach(
                            runs[p]["history"], random_best
                        )  # type: ignore[arg-type]
            figures[name] = row
            print(name, json.dumps(row), flush=True)
    figures["search_overhead_share"] = float(np.mean(shares)) if shares else 0.0
    print(f"search overhead share (sketch): {figures['search_overhead_share']:.2f}")
    return figures


if __name__ == "__main__":
    sys.exit(main())
