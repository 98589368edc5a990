"""Template search quality: best GFLOP/s after N trials for each AutoTVM tuner (grid,
random, GA, XGBoost on the op's template) and for the sketch policy, on one thread.

Ops: matmul 1024^3 and the two ResNet-18 3x3 convs (1x64x56x56 -> 64 and
1x128x28x28 -> 128, pad 1, NCHW as `tune-op conv2d` gives them). All contenders
tune the same task from scratch (each its own records), rounds alternating
between them so a drift of the machine's speed hits all alike; the tuners start
from a random config (the template's fallback config is measured separately, as
its own row). The reference (numpy's sgemm for matmul, onnxruntime's Conv for the
convs, one thread) is then timed interleaved with the best template program and
the best sketch program: the ratios are medians of per-round ratios.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_templates.py \
        [--trials 64,256] [--ops matmul,conv56,conv28] [--tuners grid,random,ga,xgb] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from timing import interleaved, median_ratio

from compiler.autotvm import TemplatePolicy
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.measure import MeasureInput, Measurer, MeasureSettings, create_builder, create_runner
from compiler.ops.workloads import op_workload
from compiler.records import create as create_store
from compiler.runtime import empty, load, num_threads
from compiler.schedule.state import State
from compiler.search.policy import create as create_policy
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


def ort_conv_call(v: list[int], rng: np.random.Generator):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n, c, h, w, f, kh, kw, stride, pad = v
    weight = (rng.standard_normal((f, c, kh, kw)) * 0.05).astype(np.float32)
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], strides=[stride] * 2, pads=[pad] * 4)],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, f, ho, wo])],
        [onnx.numpy_helper.from_array(weight, "w")],
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    return lambda: sess.run(None, {"x": x})


def contenders(task: SearchTask, tuners: list[str]) -> dict[str, object]:
    out: dict[str, object] = {
        t: TemplatePolicy(task.dag, tuner=t, seed=0, start_with_fallback=False) for t in tuners
    }
    out["sketch"] = create_policy("sketch", task.dag, model=cost_model("xgb"), seed=0)
    return out


def best_at(costs: list[float], trials: int, flops: int) -> float:
    best = min(costs[:trials], default=math.inf)
    return flops / best / 1e9 if math.isfinite(best) else 0.0


def ratio_to_reference(state: State, reference_call, rounds: int = 7) -> float:
    """Median over interleaved rounds of reference time / ours (> 1: ours faster)."""
    kernel = load(build(lower(state)))
    rng = np.random.default_rng(1)
    args = [empty(p.shape) for p in state.dag.placeholders]
    for a in args:
        a[...] = rng.random(a.shape, dtype=np.float32)
    out = empty(state.dag.outputs[0].shape)
    with threadpool_limits(1), num_threads(1):
        ours_s, theirs_s = interleaved(kernel.bind(*args, out), reference_call, rounds)
    return median_ratio(ours_s, theirs_s)


def run_op(name: str, checkpoints: list[int], tuners: list[str], tmp: Path) -> dict[str, object]:
    op, shape = OPS[name]
    task = SearchTask(name, op_workload(op, shape))
    flops = task.flop_count
    policies = contenders(task, tuners)
    stores = {k: create_store("sqlite", path=tmp / f"{name}_{k}.db") for k in policies}
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
        fallback = policies[tuners[0]].template.fallback_state(task.dag)  # type: ignore[attr-defined]
        pairs = sides[0].measurer.measure([MeasureInput(task, fallback)])
    row: dict[str, object] = {"wall_s": time.perf_counter() - start}
    row["fallback_gflops"] = flops / pairs[0][1].mean_cost_s / 1e9 if pairs else 0.0
    for s in sides:
        for cp in checkpoints:
            row[f"{s.name}_gflops_{cp}"] = best_at(s.costs_s, cp, flops)
        row[f"{s.name}_errors"] = sum(not math.isfinite(c) for c in s.costs_s)
    ref_name, ref_call = reference(op, shape)
    for who in ("xgb", "sketch"):
        policy = policies.get(who)
        if policy is not None and policy.best(1):  # type: ignore[attr-defined]
            ratio = ratio_to_reference(policy.best(1)[0][1], ref_call)  # type: ignore[attr-defined]
            row[f"{who}_vs_{ref_name}"] = ratio
    with threadpool_limits(1):
        ref_s = statistics.median(_best_s(ref_call) for _ in range(5))
    row[f"{ref_name}_gflops"] = flops / ref_s / 1e9
    for store in stores.values():
        store.close()
    return row


def _best_s(fn, repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def print_table(name: str, row: dict, checkpoints: list[int], tuners: list[str]) -> None:
    ref = "numpy" if "numpy_gflops" in row else "onnxruntime"
    print(f"\n{name}: {ref} {row[f'{ref}_gflops']:.1f} GFLOP/s (1 thread); template fallback "
          f"{row['fallback_gflops']:.1f}; {row['wall_s'] / 60:.1f} min")  # fmt: skip
    print(
        f"{'contender':<12}"
        + "".join(f"{'@' + str(c):>10}" for c in checkpoints)
        + f"{'errors':>9}"
    )
    for who in tuners + ["sketch"]:
        cells = "".join(f"{row[f'{who}_gflops_{c}']:>10.1f}" for c in checkpoints)
        print(f"{who:<12}{cells}{row[f'{who}_errors']:>9}")
    for who in ("xgb", "sketch"):
        key = f"{who}_vs_{ref}"
        if key in row:
            print(f"best {who} program vs {ref}, interleaved: {row[key]:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="64,256")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--tuners", default="grid,random,ga,xgb")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    checkpoints = sorted(int(x) for x in args.trials.split(","))
    tuners = args.tuners.split(",")
    figures: dict[str, object] = {"threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.ops.split(","):
            row = run_op(name, checkpoints, tuners, Path(tmp))
            figures.update({f"{name}_{k}": v for k, v in row.items()})
            if not args.json:
                print_table(name, row, checkpoints, tuners)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
