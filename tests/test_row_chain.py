"""A softmax or a layer norm computed a row at a time (compiler/schedule/row_chain.py),
and the code that makes such rows cheap: per-lane guards as masked vectors, and the
fold of a vector of partial results as a tree (compiler/codegen/lane_reduction.py)."""

from __future__ import annotations

import numpy as np
import pytest
from codegen_helpers import SERIAL, VECTORIZED, run, zeros

from compiler import ops, te
from compiler.codegen import build
from compiler.codegen.llvm_codegen import emit_module
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    ForKind,
    IfThenElse,
    Load,
    PrimFunc,
    Scope,
    Seq,
    Store,
)
from compiler.lower.lower import lower
from compiler.runtime import aligned, empty, load
from compiler.schedule.default import default_schedule
from compiler.schedule.stage import Attach
from compiler.schedule.state import State
from compiler.schedule.steps import ComputeAt, ComputeRoot, ScheduleError
from compiler.target import host_target
from compiler.te.constructors import exp, max_expr, min_expr
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate
from compiler.te.expr import IntImm, Var


def ph(shape, name):
    return te.placeholder(shape, name=name)


CHAINS = {
    "softmax_ragged": lambda: ops.softmax(ph((2, 37, 197), "x"), axis=-1),
    "softmax_whole": lambda: ops.softmax(ph((1, 2, 16, 128), "x"), axis=-1),
    "layer_norm_ragged": lambda: ops.layer_norm(
        ph((7, 101), "x"), ph((101,), "g"), ph((101,), "b")
    ),
    "layer_norm_whole": lambda: ops.layer_norm(
        ph((1, 9, 192), "x"), ph((192,), "g"), ph((192,), "b")
    ),
}


def _walk(stmt):
    yield stmt
    match stmt:
        case Seq(stmts):
            for s in stmts:
                yield from _walk(s)
        case IfThenElse(_, then_case, else_case):
            yield from _walk(then_case)
            if else_case is not None:
                yield from _walk(else_case)
        case _ if hasattr(stmt, "body"):
            yield from _walk(stmt.body)


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_row_chains_run_in_one_parallel_loop_over_rows(name):
    """Every stage inside the output's parallel loop over the rows: one parallel loop,
    no buffer the size of the input (only a row's scratch), the result as numpy's."""
    out = CHAINS[name]()
    dag = ComputeDAG([out])
    state = default_schedule(dag)
    assert [st.name for st in state.stages if st.attach is Attach.ROOT and st.op.axes] == [out.name]
    func = lower(state)
    stmts = list(_walk(func.body))
    parallel = [s for s in stmts if isinstance(s, For) and s.kind is ForKind.PARALLEL]
    assert len(parallel) == 1
    scratch = [s.buffer for s in stmts if isinstance(s, Allocate)]
    assert scratch and all(b.scope is Scope.LOCAL for b in scratch)
    assert max(b.size for b in scratch) <= out.shape[-1] + 16
    rng = np.random.default_rng(0)
    inputs = [aligned(rng.standard_normal(p.shape).astype(np.float32)) for p in dag.placeholders]
    (want,) = evaluate([out], dict(zip(dag.placeholders, inputs)))
    got = empty(out.shape, out.dtype)
    got[...] = np.nan
    load(build(func))(*inputs, got)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_short_rows_are_no_row_chain():
    """Rows shorter than two vectors keep the stage-by-stage schedule."""
    dag = ComputeDAG([ops.softmax(ph((64, 8), "x"), axis=-1)])
    state = default_schedule(dag)
    parallel = [
        s for s in _walk(lower(state).body) if isinstance(s, For) and s.kind is ForKind.PARALLEL
    ]
    assert len(parallel) > 1


def _softmax_state() -> State:
    """A softmax's stages: 0 x, 1 max, 2 exp, 3 sum of exps, 4 the output; exp is read by
    the sum and by the output."""
    s = State.initial(ComputeDAG([ops.softmax(ph((4, 40), "x"), axis=-1)]))
    assert [st.name for st in s.stages][1:] == [
        "softmax_max",
        "softmax_exp",
        "softmax_expsum",
        "softmax",
    ]
    return s


def test_compute_at_a_consumer_needs_the_others_inside_its_loop():
    s = _softmax_state()
    with pytest.raises(ScheduleError, match="only consumer of softmax_exp, or the others"):
        s.apply(ComputeAt(2, 4, 0))  # the sum of exps still runs at root
    s = s.apply(ComputeAt(3, 4, 0)).apply(ComputeAt(2, 4, 0)).apply(ComputeAt(1, 2, 0))
    x = np.random.default_rng(1).standard_normal((4, 40)).astype(np.float32)
    got = empty((4, 40), "float32")
    load(build(lower(s)))(aligned(x), got)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_lowering_refuses_a_reader_moved_out_of_the_loop():
    s = _softmax_state()
    s = s.apply(ComputeAt(3, 4, 0)).apply(ComputeAt(2, 4, 0)).apply(ComputeRoot(3))
    with pytest.raises(ScheduleError, match="softmax_expsum reads softmax_exp outside its loop"):
        lower(s)


def test_lane_dependent_guards_run_as_masked_vectors():
    """exp over a row of 197 in vectors of 16: the last vector's 5 lanes are guarded per
    lane. They run as one masked vector, not as 5 calls to libm's expf."""
    n = 197
    X, out = Buffer("X", (n,)), Buffer("out", (208,))  # 13 whole vectors
    j, lane = Var("j"), Var("lane")
    idx = j * IntImm(16) + lane
    guarded = IfThenElse(idx < IntImm(n), Store(out, idx, exp(Load(X, idx))))
    func = PrimFunc("ragged_exp", (X, out), For(j, 13, SERIAL, For(lane, 16, VECTORIZED, guarded)))
    ir_text = str(emit_module([func], host_target()))
    assert "llvm.masked.store" in ir_text and "expf" not in ir_text
    x = aligned(np.random.default_rng(2).uniform(-5, 5, n).astype(np.float32))
    o = zeros(208)
    o[...] = np.nan
    run(func, x, o)
    np.testing.assert_allclose(o[:n], np.exp(x), rtol=1e-5)
    assert np.isnan(o[n:]).all()  # the lanes past the row were left alone


def test_a_lane_invariant_store_under_a_lane_guard_runs_lane_by_lane():
    """`if lane < 3: acc[0] = X[lane]` stores one element per live lane in turn: no
    mask can say which lane wins, so the loop runs lane by lane (the last live wins)."""
    X, out = Buffer("X", (16,)), Buffer("out", (1,))
    lane = Var("lane")
    body = For(
        lane, 16, VECTORIZED, IfThenElse(lane < IntImm(3), Store(out, IntImm(0), Load(X, lane)))
    )
    x = aligned(np.arange(16, dtype=np.float32))
    o = zeros(1)
    run(PrimFunc("lane_guard_scalar_store", (X, out), body), x, o)
    assert o[0] == 2.0


@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("lanes", [16, 12])
def test_folding_a_vector_of_parts_into_one_element(op, lanes):
    """`for k: acc[0] = acc[0] <op> part[k]`: a tree of halves for a power-of-two count
    (a shuffle in the IR), a plain loop for others; both as numpy."""
    part, acc = Buffer("part", (lanes,)), Buffer("acc", (1,))
    k = Var("k")
    a, p = Load(acc, IntImm(0)), Load(part, k)
    value = {"sum": a + p, "max": max_expr(a, p), "min": min_expr(a, p)}[op]
    func = PrimFunc(
        f"fold_{op}_{lanes}", (part, acc), For(k, lanes, SERIAL, Store(acc, IntImm(0), value))
    )
    ir_text = str(emit_module([func], host_target()))
    assert ("shufflevector" in ir_text) == (lanes == 16)
    x = aligned(np.random.default_rng(3).standard_normal(lanes).astype(np.float32))
    o = zeros(1)
    o[0] = 0.5
    run(func, x, o)
    want = {"sum": 0.5 + x.sum(), "max": max(0.5, x.max()), "min": min(0.5, x.min())}[op]
    np.testing.assert_allclose(o[0], want, rtol=1e-6)
