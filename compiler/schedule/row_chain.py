"""Row chains: a softmax or a layer norm computed one row at a time.

A softmax over the last axis is four passes over its rows: the row max, the exps, their
sum, the scaled exps. At root each pass is a parallel loop over every row, and the exps
a buffer the size of the input, written in one pass and read back in two others. When
every stage of a task works row by row (each reads the others at its own row), the
default schedule computes them all inside the output's parallel loop over the rows:
a row's max, exps and sum live in local buffers of one row while that row is in cache,
and the task is one parallel loop instead of four.
"""

from __future__ import annotations

from math import prod

from compiler.schedule.analysis import reads_rows_along
from compiler.schedule.stage import Attach
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    ComputeAt,
    Fuse,
    Reorder,
    Rfactor,
    ScheduleError,
    Split,
)
from compiler.schedule.tile_factors import VECTOR_LANES, is_ragged, vector_factor
from compiler.te.dag import needs_multi_level_tiling
from compiler.te.expr import TensorRead
from compiler.te.traverse import walk


def is_row_chain(s: State) -> bool:
    """The computed (not inlined) stages of `s` work row by row along the last axis of
    its one output (at least two rows): each is [rows...] (a reduction along the row,
    at least two vectors long) or [rows..., width], none is a matrix product, each
    reads the others at its own row, and one at least is a reduction."""
    outs = [k for k in range(len(s.stages)) if s.is_output(k)]
    if len(outs) != 1 or len(s.stages[outs[0]].op.shape) < 2:
        return False
    o = outs[0]
    shape = s.stages[o].op.shape
    rows = tuple(shape[:-1])
    if s.stages[o].op.reduce_axes or prod(rows) < 2:
        return False
    computed = [
        k
        for k, st in enumerate(s.stages)
        if not st.is_placeholder and st.attach is not Attach.INLINE
    ]
    reductions = 0
    for k in computed:
        op = s.stages[k].op
        if needs_multi_level_tiling(op):
            return False
        if op.reduce_axes:
            if tuple(op.shape) != rows or len(op.reduce_axes) != 1:
                return False
            if op.reduce_axes[0].extent < 2 * VECTOR_LANES:  # too short for vectors of parts
                return False
            if not reads_rows_along(s.body(k), op.reduce_axes[0].var):
                return False
            reductions += 1
        elif tuple(op.shape) != tuple(shape):
            return False
    if not reductions:
        return False
    outputs = {id(s.stages[k].output): k for k in computed}
    for c in computed:
        row_vars = [a.var for a in s.stages[c].op.axes[: len(rows)]]
        for node in walk(s.body(c)):
            is_chain_read = isinstance(node, TensorRead) and id(node.tensor) in outputs
            if is_chain_read and list(node.indices[: len(rows)]) != row_vars:
                return False
    return True


def schedule_row_chain(s: State) -> State:
    """Every stage of a row chain (is_row_chain) inside the output's parallel loop over
    its rows: the output and the element-wise stages as SIMD loops along the row (the
    last vector masked when the width is ragged), the reductions as a vector of partial
    results along the row, then one across it (a factored reduction). Each stage is
    computed at the row loop of a consumer whose other consumers are inside it."""
    o = next(k for k in range(len(s.stages)) if s.is_output(k))
    n = len(s.stages[o].op.shape)
    width = s.stages[o].op.shape[-1]
    vec = VECTOR_LANES if is_ragged(width) else vector_factor(width)
    s = _row_loops(s, o, n - 1, vec)
    s = s.apply(Annotate(o, 0, Annotation.PARALLEL))
    k = o - 1
    while k >= 0:
        st = s.stages[k]
        if st.is_placeholder or st.attach is not Attach.ROOT:
            k -= 1
            continue
        if st.op.reduce_axes:
            s = s.apply(Split(k, n - 1, (VECTOR_LANES,)))  # [rows..., k.o, k.i]
            s = s.apply(Rfactor(k, n))  # stage k: [rows..., kf] over kr; k + 1 combines
            s = s.apply(Reorder(k, (*range(n - 1), n, n - 1)))  # [rows..., kr, kf]
            s = s.apply(Annotate(k, n, Annotation.VECTORIZE))
            if n > 2:
                s = s.apply(Fuse(k + 1, tuple(range(n - 1))))
            s = s.apply(ComputeAt(k, k + 1, 0))
            s = _at_row_of_consumer(s, k + 1)
        else:
            s = _row_loops(s, k, n - 1, vec)
            s = _at_row_of_consumer(s, k)
        k -= 1
    return s


def _row_loops(s: State, k: int, rows: int, vec: int) -> State:
    """Stage k's loops as [rows fused, j.o, j.i (SIMD)]."""
    s = s.apply(Split(k, rows, (vec,)))
    if rows > 1:
        s = s.apply(Fuse(k, tuple(range(rows))))
    return s.apply(Annotate(k, len(s.stages[k].iters) - 1, Annotation.VECTORIZE))


def _at_row_of_consumer(s: State, k: int) -> State:
    """Stage k computed in the row loop of the consumer all its others are inside."""
    consumers = s.consumers(k)
    for c in sorted(consumers, key=lambda c: (not s.is_output(c), -c)):
        if all(s.computed_inside(x, c, 0) for x in consumers if x != c):
            return s.apply(ComputeAt(k, c, 0))
    names = [s.stages[c].name for c in consumers]
    raise ScheduleError(f"no consumer of {s.stages[k].name} holds the others: {names}")
