"""Hand-written schedules that work on the DAG of any op, for the compiled-op tests.

Each function chooses its stages by analysis (the output stage, the stages with
a reduction, the producers with a single consumer), so one function covers
every op of the library it applies to. When an op has nothing a function
targets (no reduction for `rfactor_reduction`), it raises `NotApplicable`
rather than return a schedule that silently leaves the op as it was. The
default split factors (3, 4, 5) do not divide most of the tests' odd extents,
so the ragged-split guards run too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod

from compiler.schedule.stage import Attach, IterType, SplitRel
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    ComputeInline,
    Fuse,
    Pragma,
    Reorder,
    Rfactor,
    Split,
)
from compiler.te.dag import ComputeDAG

PARALLEL, VECTORIZE, UNROLL = Annotation.PARALLEL, Annotation.VECTORIZE, Annotation.UNROLL


class NotApplicable(Exception):
    """The op has no stage this hand schedule targets (the message says why)."""


# ------------------------------------------------------------------ helpers


def inline_injective(s: State) -> State:
    """Every non-output stage without a reduction (pad, bias, ...) inlined."""
    for k, st in enumerate(s.stages):
        if not st.is_placeholder and not st.op.reduce_axes and not s.is_output(k):
            s = s.apply(ComputeInline(k))
    return s


def output_stage(s: State) -> int:
    return s.stage_of[id(s.dag.outputs[0])]


def reduction_stages(s: State) -> list[int]:
    """Root stages with a reduction, last first (so inserted stages shift only done ones)."""
    return [
        k
        for k in reversed(range(len(s.stages)))
        if not s.stages[k].is_placeholder
        and s.stages[k].op.reduce_axes
        and s.stages[k].attach is not Attach.INLINE
    ]


def split_loop(s: State, k: int, uid: int, factor: int) -> tuple[State, int, int]:
    """Split stage k's loop `uid` by `factor` (capped at its extent): (state, outer, inner)."""
    it = s.stages[k].iter_by_uid(uid)
    assert it is not None and it.extent is not None
    s = s.apply(Split(k, s.stages[k].iter_index(uid), (min(factor, it.extent),)))
    rel = s.stages[k].relations[-1]
    assert isinstance(rel, SplitRel)
    return s, rel.children[0], rel.children[1]


def reorder_loops(s: State, k: int, uids: Sequence[int]) -> State:
    st = s.stages[k]
    return s.apply(Reorder(k, tuple(st.iter_index(u) for u in uids)))


def fuse_parallel(s: State, k: int, count: int) -> State:
    """Fuse stage k's first `count` loops into one parallel loop."""
    if count > 1:
        s = s.apply(Fuse(k, tuple(range(count))))
    return s.apply(Annotate(k, 0, PARALLEL)) if count else s


def require(done: int, what: str, dag: ComputeDAG) -> None:
    if not done:
        names = ", ".join(t.name for t in dag.tensors if not t.is_placeholder)
        raise NotApplicable(f"no {what} among the stages {names}")


# ------------------------------------------------------------ the schedules


def tile_parallel_vectorize(dag: ComputeDAG, *, factor: int = 4) -> State:
    """Output stage: every spatial axis split in two, outer parts fused and parallel,
    reductions next, inner parts last (innermost SIMD, the next one unrolled);
    injective producers inlined."""
    s = inline_injective(State.initial(dag))
    k = output_stage(s)
    st = s.stages[k]
    spatial = [it for it in st.iters if it.type is IterType.SPATIAL]
    reduce = [it.uid for it in st.iters if it.type is IterType.REDUCE]
    require(sum(it.extent != 1 for it in spatial), "output axis longer than 1", dag)
    outer: list[int] = []
    inner: list[int] = []
    for it in spatial:
        if it.extent == 1:
            outer.append(it.uid)
            continue
        s, o, i = split_loop(s, k, it.uid, factor)
        outer.append(o)
        inner.append(i)
    s = fuse_parallel(reorder_loops(s, k, outer + reduce + inner), k, len(outer))
    last = len(s.stages[k].iters) - 1
    s = s.apply(Annotate(k, last, VECTORIZE))
    return s.apply(Annotate(k, last - 1, UNROLL)) if last >= 2 else s


def cache_write_register_tile(
    dag: ComputeDAG, *, rows: int = 3, lanes: int = 4, max_unroll_step: int = 64
) -> State:
    """Every reduction stage: a write cache computed in the parallel tile loop of its
    copy, with the reduction outside the (rows x lanes) register tile."""
    s = inline_injective(State.initial(dag))
    done = 0
    for k in reduction_stages(s):
        shape = s.stages[k].op.shape
        tile_axes = [a for a, extent in enumerate(shape) if extent > 1][-2:]
        if not tile_axes:
            continue  # a single element: no tile to speak of
        factors = dict(zip(tile_axes, [rows, lanes][-len(tile_axes) :]))
        s = s.apply(CacheWrite(k))  # local stage at k, copy at k + 1
        s = _tile_copy(s, k + 1, factors)
        s = s.apply(ComputeAt(k, k + 1, 0))
        s = _register_tile(s, k, tile_axes, max_unroll_step)
        done += 1
    require(done, "reduction stage with an axis longer than 1", dag)
    return s


def _tile_copy(s: State, c: int, factors: dict[int, int]) -> State:
    """[other axes, tile outer parts] fused parallel, then the tile (rows unrolled, SIMD)."""
    others: list[int] = []
    outer: list[int] = []
    inner: list[int] = []
    for axis, it in enumerate(s.stages[c].iters):
        if axis not in factors:
            others.append(it.uid)
            continue
        s, o, i = split_loop(s, c, it.uid, factors[axis])
        outer.append(o)
        inner.append(i)
    s = fuse_parallel(reorder_loops(s, c, others + outer + inner), c, len(others) + len(outer))
    last = len(s.stages[c].iters) - 1
    s = s.apply(Annotate(c, last, VECTORIZE))
    return s.apply(Annotate(c, last - 1, UNROLL)) if len(inner) == 2 else s


def _register_tile(s: State, k: int, tile_axes: list[int], max_unroll_step: int) -> State:
    """The local stage: reduce loops outside its tile loops; rows unrolled, lanes SIMD."""
    iters = s.stages[k].iters
    n = len(s.stages[k].op.axes)
    others = [it.uid for a, it in enumerate(iters[:n]) if a not in tile_axes]
    tile = [iters[a].uid for a in tile_axes]
    s = reorder_loops(s, k, others + [it.uid for it in iters[n:]] + tile)
    last = len(iters) - 1
    s = s.apply(Annotate(k, last, VECTORIZE))
    if len(tile) == 2:
        s = s.apply(Annotate(k, last - 1, UNROLL))
    return s.apply(Pragma(k, 0, "auto_unroll_max_step", max_unroll_step))


def compute_at_producers(dag: ComputeDAG, *, factor: int = 3, per_point: bool = False) -> State:
    """Every producer with a single consumer (padding, exp-sum of softmax, a matmul
    before its bias) computed inside that consumer: at the outer part of its last
    split spatial loop (a tile of `factor` points), or the inner part (`per_point`).
    Producers read by several stages (softmax's max) stay at root."""
    s = State.initial(dag)
    target_loop: dict[int, int] = {}  # consumer stage -> uid of the loop producers go in
    done = 0
    for k in reversed(range(len(s.stages))):
        if s.stages[k].is_placeholder or s.is_output(k) or len(s.consumers(k)) != 1:
            continue
        (c,) = s.consumers(k)
        if c not in target_loop:
            s, target_loop[c] = _attach_loop(s, c, factor, per_point)
        s = s.apply(ComputeAt(k, c, s.stages[c].iter_index(target_loop[c])))
        done += 1
    require(done, "producer with a single consumer", dag)
    return s


def _attach_loop(s: State, c: int, factor: int, per_point: bool) -> tuple[State, int]:
    """Split consumer c's last spatial loop longer than 1; the part to compute producers at."""
    spatial = [it for it in s.stages[c].iters if it.type is IterType.SPATIAL]
    longer = [it for it in spatial if it.extent != 1]
    if not longer:
        return s, spatial[-1].uid if spatial else s.stages[c].iters[0].uid
    s, outer, inner = split_loop(s, c, longer[-1].uid, factor)
    return s, inner if per_point else outer


def rfactor_reduction(dag: ComputeDAG, *, factor: int = 5, factor_is_inner: bool = True) -> State:
    """Every reduction stage: reduce loops fused, split by `factor`, rfactored on the
    inner (or outer) part; the new axis of the partial stage innermost and SIMD, the
    combining stage's spatial loops fused and parallel."""
    s = inline_injective(State.initial(dag))
    done = 0
    for k in reduction_stages(s):
        op = s.stages[k].op
        n, m = len(op.axes), len(op.reduce_axes)
        total = prod(a.extent for a in op.reduce_axes)
        if total < 2:
            continue  # nothing to factor
        if m > 1:
            s = s.apply(Fuse(k, tuple(range(n, n + m))))
        s = s.apply(Split(k, n, (min(factor, total),)))
        s = s.apply(Rfactor(k, n + 1 if factor_is_inner else n))
        # partial stage at k: [spatial..., kf, kr] -> [spatial..., kr, kf (SIMD)]
        s = s.apply(Reorder(k, tuple(range(n)) + (n + 1, n)))
        s = s.apply(Annotate(k, n + 1, VECTORIZE))
        if any(extent > 1 for extent in op.shape):
            s = fuse_parallel(s, k + 1, n)
        done += 1
    require(done, "reduction over more than one element", dag)
    return s


HandSchedule = Callable[[ComputeDAG], State]

HAND_SCHEDULES: dict[str, HandSchedule] = {
    "tile_parallel_vectorize": tile_parallel_vectorize,
    "tile_parallel_vectorize_f3": lambda dag: tile_parallel_vectorize(dag, factor=3),
    "cache_write_register_tile": cache_write_register_tile,
    "cache_write_register_tile_2x5": lambda dag: cache_write_register_tile(
        dag, rows=2, lanes=5, max_unroll_step=16
    ),
    "compute_at_producers": compute_at_producers,
    "compute_at_producers_per_point": lambda dag: compute_at_producers(dag, per_point=True),
    "rfactor_inner": rfactor_reduction,
    "rfactor_outer_f3": lambda dag: rfactor_reduction(dag, factor=3, factor_is_inner=False),
}
