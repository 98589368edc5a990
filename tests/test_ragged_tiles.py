"""Extents with no divisor worth a vector (197 tokens of a ViT): the default schedule
vectorizes them anyway with splits that do not divide, and the lowering runs the last,
partial tile apart so the others have no per-lane test (partition_ragged_loops)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.loop_ir import For, ForKind, IfThenElse, Scope, Seq, Store
from compiler.lower.lower import lower
from compiler.runtime import aligned, empty, load
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    Fuse,
    Reorder,
    Split,
)
from compiler.schedule.tile_factors import is_ragged, tile_rows
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate
from compiler.te.expr import Select
from compiler.te.traverse import free_vars, walk


def ph(shape, name):
    return te.placeholder(shape, name=name)


CASES = {
    "scores": lambda: ops.batch_matmul(ph((1, 3, 197, 64), "q"), ph((1, 3, 64, 197), "k")),
    # few rows of ragged columns: one row of vectors per tile (many rows: a grid of tiles)
    "few_rows": lambda: ops.batch_matmul(ph((1, 3, 9, 64), "q"), ph((1, 3, 64, 197), "k")),
    "context": lambda: ops.batch_matmul(ph((1, 3, 197, 197), "p"), ph((1, 3, 197, 64), "v")),
    "mlp": lambda: ops.relu(ops.batch_matmul(ph((1, 197, 48), "x"), ph((1, 48, 96), "w"))),
    "both": lambda: ops.matmul(ph((37, 40), "a"), ph((40, 53), "b")),
    # the rows on an outer axis: ViT's input projection, [tokens, 1, features]
    "rows_outer": lambda: ops.add(
        ops.batch_matmul(ops.transpose(ph((1, 197, 48), "x"), (1, 0, 2)), ph((48, 96), "w")),
        ph((96,), "b"),
    ),
    "softmax": lambda: ops.softmax(ph((2, 37, 197), "x"), axis=-1),
    # row reductions of 101 (factored into vectors along the row, the last one masked)
    "row_sum": lambda: ops.reduce_sum(ph((3, 7, 101), "x"), axes=(-1,)),
    "row_argmax": lambda: ops.argmax(ph((3, 7, 101), "x"), axis=-1),
    "layer_norm": lambda: ops.layer_norm(ph((7, 101), "x"), ph((101,), "g"), ph((101,), "b")),
    "elementwise": lambda: ops.sigmoid(ph((3, 37, 37), "x")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ragged_default_schedules_compute_every_element(name):
    out = CASES[name]()
    dag = ComputeDAG([out])
    rng = np.random.default_rng(0)
    inputs = [aligned(rng.standard_normal(p.shape).astype(np.float32)) for p in dag.placeholders]
    (want,) = evaluate([out], dict(zip(dag.placeholders, inputs)))
    got = empty(out.shape, out.dtype)
    got[...] = np.nan if out.dtype == "float32" else -1
    load(build(lower(default_schedule(dag))))(*inputs, got)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_ragged_extents_are_vectorized():
    assert is_ragged(197) and is_ragged(37) and not is_ragged(192) and not is_ragged(55)  # 11 lanes
    dag = ComputeDAG([CASES["scores"]()])
    state = default_schedule(dag)
    vectors = [
        it.extent for st in state.stages for it in st.iters if it.annotation is Annotation.VECTORIZE
    ]
    assert vectors and all(v == 16 for v in vectors)


def _loops_with_branches(stmt) -> list[tuple[int, bool]]:
    """(extent, whether its body branches) of every serial loop holding a vector loop."""
    out = []
    match stmt:
        case For(_, extent, _, body):
            out.append((extent, _branches(body)))
            out += _loops_with_branches(body)
        case Seq(stmts):
            for s in stmts:
                out += _loops_with_branches(s)
        case IfThenElse(_, then_case, else_case):
            out += _loops_with_branches(then_case)
            if else_case is not None:
                out += _loops_with_branches(else_case)
        case _ if hasattr(stmt, "body"):
            out += _loops_with_branches(stmt.body)
    return out


def _branches(stmt) -> bool:
    match stmt:
        case IfThenElse():
            return True
        case For(_, _, _, body):
            return _branches(body)
        case Seq(stmts):
            return any(_branches(s) for s in stmts)
        case _ if hasattr(stmt, "body"):
            return _branches(stmt.body)
    return False


def test_the_partial_tile_runs_apart_from_the_full_ones():
    """197 columns in tiles of 64: three full tiles with no branch, then the last."""
    func = lower(default_schedule(ComputeDAG([CASES["few_rows"]()])))
    loops = _loops_with_branches(func.body)
    assert (3, False) in loops  # the full tiles: j.o over 0..2, no guard left
    unpartitioned = lower(default_schedule(ComputeDAG([CASES["few_rows"]()])), simplify=False)
    assert (4, True) in _loops_with_branches(unpartitioned.body)


def test_many_rows_of_ragged_columns_take_a_grid_of_tiles():
    """197 x 197 scores: tile_rows() x 16 tiles (8 rows with AVX-512, 6 with AVX2), the
    12 full column tiles apart from the partial 13th (their rows guarded only in the last
    row tile)."""
    state = default_schedule(ComputeDAG([CASES["scores"]()]))
    local = next(st for st in state.stages if st.name.endswith(".local"))
    assert [it.extent for it in local.iters[-2:]] == [tile_rows(), 16]
    func = lower(state)
    assert 12 in [extent for extent, _ in _loops_with_branches(func.body)]


def test_row_reductions_run_in_vectors_along_the_row():
    """A softmax's max and sum of exps reduce along contiguous rows: factored into a
    vector of partial results along the row (the last one masked), then across it."""
    state = default_schedule(ComputeDAG([CASES["softmax"]()]))
    factored = [st for st in state.stages if st.name.endswith(".rf")]
    assert {st.name for st in factored} == {"softmax_max.rf", "softmax_expsum.rf"}
    for st in factored:
        assert st.iters[-1].annotation is Annotation.VECTORIZE and st.iters[-1].extent == 16


def _matmul_in_parallel_tiles() -> State:
    """13 x 32 = [13, 40] x [40, 32] in register tiles of 5 rows x 16 columns, the
    [column block, row tile] loops fused in parallel: 13 rows are 5 + 5 + 3, the row
    tile ragged in every third iteration of the parallel loop."""
    c = ops.matmul(ph((13, 40), "a"), ph((40, 32), "b"))
    s = State.initial(ComputeDAG([c])).apply(CacheWrite(2))  # 3: the output, 2: .local
    s = s.apply(Split(3, 0, (5,))).apply(Split(3, 2, (16,)))  # [i.o, i.i, j.o, j.i]
    s = s.apply(Reorder(3, (2, 0, 1, 3))).apply(Fuse(3, (0, 1)))  # [j.o@i.o, i.i, j.i]
    s = s.apply(Annotate(3, 0, Annotation.PARALLEL)).apply(Annotate(3, 2, Annotation.VECTORIZE))
    s = s.apply(Split(2, 0, (5,))).apply(Split(2, 2, (16,)))  # [i.o, i.i, j.o, j.i, k]
    s = s.apply(Reorder(2, (0, 2, 4, 1, 3)))  # [i.o, j.o, k, i.i, j.i]
    s = s.apply(Annotate(2, 3, Annotation.UNROLL)).apply(Annotate(2, 4, Annotation.VECTORIZE))
    return s.apply(ComputeAt(2, 3, 0))


def test_ragged_tiles_of_a_parallel_loop_run_without_branches_when_whole():
    """A parallel loop cannot be partitioned like a serial one: its body runs in two
    versions instead, the whole tiles' with no branch left (version_ragged_tiles)."""
    state = _matmul_in_parallel_tiles()
    func = lower(state)
    loop = func.body
    while not isinstance(loop, For):
        loop = loop.body
    assert loop.kind is ForKind.PARALLEL and isinstance(loop.body, IfThenElse)
    assert not _branches(loop.body.then_case) and _branches(loop.body.else_case)
    dag = state.dag
    rng = np.random.default_rng(0)
    inputs = [aligned(rng.standard_normal(p.shape).astype(np.float32)) for p in dag.placeholders]
    got = empty((13, 32), "float32")
    got[...] = np.nan
    load(build(func))(*inputs, got)
    np.testing.assert_allclose(got, inputs[0] @ inputs[1], rtol=1e-4, atol=1e-4)


def _local_stores(stmt, conds=(), lanes=()):
    """(store, enclosing branch conditions, enclosing SIMD loop variables) of every store
    to a local buffer."""
    match stmt:
        case Store(buf, _, _) if buf.scope is Scope.LOCAL:
            yield stmt, conds, lanes
        case For(var, _, kind, body):
            yield from _local_stores(
                body, conds, lanes + ((var,) if kind is ForKind.VECTORIZED else ())
            )
        case IfThenElse(cond, then_case, else_case):
            yield from _local_stores(then_case, conds + (cond,), lanes)
            if else_case is not None:
                yield from _local_stores(else_case, conds, lanes)
        case Seq(stmts):
            for s in stmts:
                yield from _local_stores(s, conds, lanes)
        case _ if hasattr(stmt, "body"):
            yield from _local_stores(stmt.body, conds, lanes)


def test_the_partial_column_tile_accumulates_whole_vectors():
    """197 columns: the register tile of the last 5 computes all 16 lanes, its reads of
    columns past 197 masked (a select), so no store into the tile tests its lanes one by
    one (which ran lane by lane: ViT's scores 1.1-1.3x slower)."""
    func = lower(default_schedule(ComputeDAG([CASES["scores"]()])))
    stores = list(_local_stores(func.body))
    assert stores
    for _, conds, lanes in stores:
        assert not any(set(lanes) & free_vars(c) for c in conds)
    assert any(
        isinstance(n, Select) for st, _, _ in stores for n in walk(st.value)
    )  # the partial tile's masked reads


def test_whole_tiles_of_a_parallel_loop_drop_the_masked_reads():
    """A classifier's 1000 columns on 63 panels, tiles of 7 panels in parallel: the
    last tile's reads past column 1000 are masked (selects on the lanes); the whole
    tiles' version drops those selects with the branches (version_ragged_tiles)."""
    out = ops.matmul_panels(ph((1, 64), "x"), ph((63, 64, 16), "w"), 1000)
    func = lower(default_schedule(ComputeDAG([out])))
    loop = func.body
    while not isinstance(loop, For):
        loop = loop.body
    assert loop.kind is ForKind.PARALLEL and isinstance(loop.body, IfThenElse)

    def selects(stmt):
        return [
            n for st, _, _ in _local_stores(stmt) for n in walk(st.value) if isinstance(n, Select)
        ]

    assert not selects(loop.body.then_case) and selects(loop.body.else_case)
