"""Schedule steps, states and lowering, checked with the loop-IR interpreter (no LLVM)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from compiler import te
from compiler.lower import interpret
from compiler.lower.loop_ir import format_func
from compiler.lower.lower import lower
from compiler.lower.printer import format_state
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    ComputeInline,
    FollowSplit,
    Fuse,
    PackLayout,
    Pragma,
    Reorder,
    Rfactor,
    ScheduleError,
    Split,
    step_from_json,
    steps_from_json,
    steps_to_json,
)
from compiler.te.dag import ComputeDAG

P, V = Annotation.PARALLEL, Annotation.VECTORIZE


def matmul_relu(m=12, n=10, k=7, names=("A", "B", "C", "relu")):
    a = te.placeholder((m, k), name=names[0])
    b = te.placeholder((k, n), name=names[1])
    r = te.reduce_axis(k, name="k")
    c = te.compute((m, n), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name=names[2])
    d = te.compute((m, n), lambda i, j: te.max_expr(c[i, j], 0.0), name=names[3])
    return ComputeDAG([d])


def run_state(state: State, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    func = lower(state)
    args = [rng.standard_normal(p.shape).astype(p.dtype) for p in func.params]
    interpret.run(func, *args)
    a, b = args[0], args[1]
    return args[-1], np.maximum(a @ b, 0)


def assert_correct(state: State) -> None:
    got, want = run_state(state)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_naive_schedule_computes_matmul_relu():
    assert_correct(State.initial(matmul_relu()))


def test_workload_key_ignores_names_but_not_shapes():
    a = matmul_relu(names=("A", "B", "C", "relu"))
    b = matmul_relu(names=("X", "Y", "Z", "out"))
    c = matmul_relu(m=13)
    assert a.workload_key == b.workload_key
    assert a.workload_key != c.workload_key


def test_flop_count_of_matmul_relu():
    assert matmul_relu(12, 10, 7).flop_count == 2 * 12 * 10 * 7 + 12 * 10


def tiled_fused(dag):
    s = State.initial(dag)
    s = s.apply(Split(2, 0, (2, 3))).apply(Split(2, 3, (4,)))
    s = s.apply(FollowSplit(3, 0, 0, 3)).apply(FollowSplit(3, 3, 1, 2))
    s = s.apply(ComputeAt(2, 3, 1))
    s = s.apply(Fuse(3, (0, 1))).apply(Annotate(3, 0, P)).apply(Annotate(3, 3, V))
    return s


def test_tiled_fused_parallel_vectorized_schedule_is_correct():
    assert_correct(tiled_fused(matmul_relu()))


def test_cache_write_with_register_tile_and_auto_unroll():
    s = State.initial(matmul_relu()).apply(CacheWrite(2))
    s = s.apply(Split(3, 0, (4,))).apply(Split(3, 2, (8,))).apply(Reorder(3, (0, 2, 1, 3)))
    s = s.apply(ComputeAt(2, 3, 1)).apply(Split(2, 2, (7,)))
    s = s.apply(Reorder(2, (2, 3, 0, 1))).apply(Pragma(2, 0, "auto_unroll_max_step", 64))
    s = s.apply(ComputeInline(3)) if False else s
    assert_correct(s)
    assert "unrolled" in format_func(lower(s))


@pytest.mark.parametrize("inner", [True, False])
@pytest.mark.parametrize("factor", [2, 3, 7])
def test_rfactor_inner_and_outer(inner, factor):
    s = State.initial(matmul_relu()).apply(Split(2, 2, (factor,)))
    s = s.apply(Rfactor(2, 3 if inner else 2))
    assert_correct(s)


def test_rfactor_of_fused_reduction():
    a = te.placeholder((3, 4, 5), name="A")
    r1, r2 = te.reduce_axis(4, "r1"), te.reduce_axis(5, "r2")
    b = te.compute((3,), lambda i: te.max(a[i, r1, r2], axis=[r1, r2]), name="B")
    s = State.initial(ComputeDAG([b])).apply(Fuse(1, (1, 2))).apply(Split(1, 1, (6,)))
    s = s.apply(Rfactor(1, 2)).apply(Annotate(1, 1, V))
    x = np.random.default_rng(1).standard_normal((3, 4, 5)).astype("f")
    out = np.zeros(3, "f")
    interpret.run(lower(s), x, out)
    np.testing.assert_allclose(out, x.reshape(3, -1).max(axis=1))


def test_inlined_elementwise_producer_and_ragged_split():
    a = te.placeholder((5, 9), name="A")
    b = te.compute((5, 9), lambda i, j: a[i, j] * 2.0, name="B")
    c = te.compute((5, 9), lambda i, j: b[i, j] + 1.0, name="C")
    s = State.initial(ComputeDAG([c])).apply(ComputeInline(1)).apply(Split(2, 1, (4,)))
    s = s.apply(Annotate(2, 2, V))
    x = np.random.default_rng(2).standard_normal((5, 9)).astype("f")
    out = np.zeros_like(x)
    func = lower(s)
    interpret.run(func, x, out)
    np.testing.assert_allclose(out, x * 2 + 1, rtol=1e-6)
    assert len(func.params) == 2  # the inlined stage has no buffer


def test_padding_stage_attached_inside_convolution_loop():
    x = te.placeholder((1, 2, 6, 6), name="X")
    w = te.placeholder((3, 2, 3, 3), name="W")
    pad = te.compute(
        (1, 2, 8, 8),
        lambda n, c, h, v: te.select(
            te.logical_and(h >= 1, h < 7, v >= 1, v < 7), x[n, c, h - 1, v - 1], 0.0
        ),
        name="pad",
    )
    rc, ry, rx = te.reduce_axis(2, "rc"), te.reduce_axis(3, "ry"), te.reduce_axis(3, "rx")
    conv = te.compute(
        (1, 3, 6, 6),
        lambda n, f, h, v: te.sum(pad[n, rc, h + ry, v + rx] * w[f, rc, ry, rx], axis=[rc, ry, rx]),
        name="conv",
    )
    s = State.initial(ComputeDAG([conv])).apply(Split(3, 2, (2,))).apply(ComputeAt(1, 3, 2))
    rng = np.random.default_rng(3)
    xv, wv = (
        rng.standard_normal((1, 2, 6, 6)).astype("f"),
        rng.standard_normal((3, 2, 3, 3)).astype("f"),
    )
    out = np.zeros((1, 3, 6, 6), "f")
    func = lower(s)
    interpret.run(func, xv, wv, out)
    xp = np.pad(xv, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros_like(out)
    for f in range(3):
        for h in range(6):
            for v in range(6):
                ref[0, f, h, v] = (xp[0, :, h : h + 3, v : v + 3] * wv[f]).sum()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert "alloc pad" in format_func(func) and "local" in format_func(func)


def test_steps_round_trip_through_json_and_replay_gives_same_program():
    s = tiled_fused(matmul_relu())
    text = json.dumps(steps_to_json(s.steps))
    again = State.replay(s.dag, steps_from_json(json.loads(text)))
    assert again.steps == s.steps
    assert format_func(lower(again)) == format_func(lower(s))
    assert str(again) == str(s)


@pytest.mark.parametrize(
    "steps, message",
    [
        ([Split(2, 5, (2,))], "has 3 loops, no loop 5"),
        ([Split(2, 0, (0,))], "positive integers"),
        ([Fuse(2, (0, 2))], "consecutive"),
        ([Fuse(2, (1, 2))], "spatial and reduction"),
        ([Reorder(2, (0, 0, 1))], "permutation"),
        ([Annotate(2, 2, V)], "needs a spatial loop"),
        ([Annotate(2, 2, P)], "needs a spatial loop"),
        ([ComputeAt(3, 2, 0)], "output"),
        ([ComputeInline(2)], "reduction"),
        ([ComputeAt(2, 1, 0)], "only consumer"),
        ([Split(2, 2, (2,)), Rfactor(2, 0)], "not a reduction"),
        ([Pragma(2, 0, "unroll_everything", 3)], "unknown pragma"),
        ([Annotate(0, 0, V)], "is an input"),
        ([Split(9, 0, (2,))], "no stage 9"),
        ([FollowSplit(2, 0, 0, 2)], "no step 0"),
    ],
)
def test_illegal_steps_raise_schedule_error_naming_the_step(steps, message):
    s = State.initial(matmul_relu())
    with pytest.raises(ScheduleError, match=message) as info:
        for step in steps:
            s = s.apply(step)
    assert type(steps[-1]).__name__ in str(info.value)


def test_malformed_step_record_is_rejected():
    with pytest.raises(ScheduleError, match="malformed step record"):
        step_from_json({"kind": "split", "stage": 1})
    with pytest.raises(ScheduleError, match="malformed step record"):
        step_from_json({"kind": "teleport", "stage": 1})


def test_sketch_with_holes_cannot_be_lowered():
    s = State.initial(matmul_relu()).apply(Split(2, 0, (None, 2)))
    assert not s.is_complete
    with pytest.raises(ScheduleError, match="unfilled split factors"):
        lower(s)


def test_pack_layout_reads_the_input_through_a_panel_copy():
    s = State.initial(matmul_relu(12, 10, 7)).apply(Split(2, 1, (5,)))
    s = s.apply(PackLayout(2, 1, 0, 1))
    names = [st.name for st in s.stages]
    assert names.index("B.packed") == 2 and s.stages[2].op.shape == (2, 7, 5)
    assert_correct(s)
    with pytest.raises(ScheduleError, match="panel 4 does not divide"):
        State.initial(matmul_relu(12, 10, 7)).apply(Split(2, 1, (4,))).apply(PackLayout(2, 1, 0, 1))
    with pytest.raises(ScheduleError, match="not read along"):
        State.initial(matmul_relu(12, 10, 7)).apply(Split(2, 1, (5,))).apply(PackLayout(2, 0, 0, 1))


def test_a_state_prints_as_loop_nests_with_the_extents_lowering_infers():
    s = tiled_fused(matmul_relu())
    text = str(s)
    assert text == format_state(s)
    # C is computed inside relu's fused loop: its outer tile loops shrink from 2 to 1
    assert "    for i.1 in 0..1\n" in text and "C[i, j] = sum((A[i, k] * B[k, j]))" in text
    assert "for j.1 in 0..4 (vectorize)" in text


def test_the_schedule_layer_does_not_import_lowering():
    """compiler.schedule never imports compiler.lower (the printer registers itself there);
    a state printed before compiler.lower is imported shows its stages and steps."""
    code = """
import importlib, pkgutil, sys
import compiler.schedule
for m in pkgutil.iter_modules(compiler.schedule.__path__):
    importlib.import_module(f"compiler.schedule.{m.name}")
print(sorted(m for m in sys.modules if m.startswith("compiler.lower")))
from compiler import te
from compiler.schedule.state import State
from compiler.schedule.steps import Split
from compiler.te.dag import ComputeDAG
a = te.placeholder((4, 4), name="A")
print(State.initial(ComputeDAG([te.compute((4,), lambda i: a[i, 0], name="B")])).apply(
    Split(1, 0, (2,))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "[]",
        "stages A, B; steps:",
        "  Split(stage=1, iter=0, factors=(2,))",
    ]
