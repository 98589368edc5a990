"""The default schedule: what runs where no tuning record exists.

Rules, applied by analysis of the DAG rather than per op:
1. every non-output stage without a reduction is inlined, but the padding of a
   conv that reads it faster from a buffer (analysis.pads_wide_conv) or of a
   constant-matrix transform (analysis.pads_transform), an operand a matrix product
   would gather lane by lane (analysis.transposes_tile_operand), and the transforms
   themselves: their parallel outer loops hold the tile's axes unrolled, then a
   SIMD loop, the first of two passes inside the second (schedule_const_transform);
2. a stage that needs multi-level tiling (matmul, conv, dense) computes a
   register tile (rows x vector) inside the tile loop of its element-wise
   consumer, or of a write cache when it has none; the tile loops are fused
   and run in parallel, the tile's row loop unrolled, its vector loop SIMD;
3. other reductions run their spatial loops fused in parallel, vectorized
   over the innermost spatial axis when the inputs are read along it;
4. element-wise stages run fused-parallel outer loops and a SIMD inner loop.
"""

from __future__ import annotations

import os

from compiler.ops.tags import CONV2D_BLOCKED, DEPTHWISE_CONV2D_BLOCKED, DEPTHWISE_CONV2D_NCHW
from compiler.schedule.analysis import (
    blocked_consumer,
    const_axes,
    elementwise_consumer,
    keeps_costly_values,
    pads_transform,
    pads_wide_conv,
    reads_rows_along,
    transposes_tile_operand,
)
from compiler.schedule.conv_tiles import (
    is_flat_pointwise,
    tile_blocked_conv,
    tile_blocked_output,
    tile_depthwise,
    tile_pointwise,
)
from compiler.schedule.row_chain import is_row_chain, schedule_row_chain
from compiler.schedule.stage import Attach
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    ComputeInline,
    Fuse,
    Reorder,
    Rfactor,
    Split,
)
from compiler.schedule.tile_factors import (
    VECTOR_LANES,
    few_registers,
    is_ragged,
    narrow_row_tile,
    row_factor,
    tile_rows,
    vector_factor,
)
from compiler.te.dag import ComputeDAG, needs_multi_level_tiling
from compiler.te.expr import Expr, IterVar, TensorRead, Var
from compiler.te.traverse import walk


def default_schedule(dag: ComputeDAG, *, cores: int | None = None) -> State:
    """A reasonable, untuned schedule for any DAG of the op library."""
    del cores  # one fused parallel loop suits every core count for now
    s = State.initial(dag)
    for k in range(len(s.stages)):
        st = s.stages[k]
        inlineable = not st.is_placeholder and not st.op.reduce_axes and not s.is_output(k)
        keep = (
            pads_wide_conv(s, k)
            or pads_transform(s, k)
            or const_axes(s, k)
            or transposes_tile_operand(s, k)
            or keeps_costly_values(s, k)
        )
        if inlineable and not keep:
            s = s.apply(ComputeInline(k))
    if is_row_chain(s):
        return schedule_row_chain(s)
    fused_into: dict[int, int] = {}  # id(consumer output) -> id(tiled producer output)
    for k, st in enumerate(s.stages):
        if (c := blocked_consumer(s, k)) is not None:
            fused_into[id(s.stages[c].output)] = id(st.output)
        elif not st.is_placeholder and needs_multi_level_tiling(st.op):
            c = elementwise_consumer(s, k)
            if c is not None:
                fused_into[id(s.stages[c].output)] = id(st.output)
    k = len(s.stages) - 1
    while k >= 0:
        st = s.stages[k]
        if st.is_placeholder or st.attach is Attach.INLINE or id(st.output) in fused_into:
            k -= 1
            continue
        if (c := blocked_consumer(s, k)) is not None:
            s = tile_blocked_conv(s, k, c)
        elif const_axes(s, k):
            s = schedule_const_transform(s, k)
        elif needs_multi_level_tiling(st.op):
            consumer = elementwise_consumer(s, k)
            if consumer is None or fused_into.get(id(s.stages[consumer].output)) != id(st.output):
                s = s.apply(CacheWrite(k))
                consumer = k + 1
            s = tile_into_consumer(s, k, consumer)
        elif st.op.reduce_axes:
            s = schedule_reduction(s, k)
        else:
            s = schedule_elementwise(s, k)
        k -= 1
    return s


def tile_into_consumer(s: State, p: int, c: int) -> State:
    """Register tile of p computed in the fused parallel tile loop of consumer c."""
    shape = s.stages[c].op.shape
    n = len(shape)
    vec = vector_factor(shape[-1])
    panel = s.stages[p].op.attr("panel", 0)
    if panel and shape[-1] % panel:  # whole panels of a packed weight, the last partial
        vec = panel
    rows = row_factor(shape[-2], tile_rows(vec=vec)) if n >= 2 else 1
    if n >= 2 and few_registers():
        vec, rows = narrow_row_tile(shape[-2], shape[-1], vec, rows)
    if s.stages[p].op.tag == DEPTHWISE_CONV2D_NCHW and shape[-1] >= 14:
        return tile_depthwise(s, p, c)
    if s.stages[p].op.tag in (CONV2D_BLOCKED, DEPTHWISE_CONV2D_BLOCKED):
        return tile_blocked_output(s, p, c)
    if is_flat_pointwise(s.stages[p].op):
        return tile_pointwise(s, p, c)
    row_axis = max((i for i in range(n - 1) if shape[i] > 1), default=None)
    if is_ragged(shape[-1]):
        if row_axis is not None and shape[row_axis] >= 2 * tile_rows():
            return tile_ragged_grid(s, p, c, row_axis)
        return tile_ragged_row(s, p, c)
    if row_axis is not None and vec >= 8 and is_ragged(shape[row_axis]):
        return tile_ragged_rows(s, p, c, vec, row_axis)
    if rows == 1 and shape[-1] // vec >= 2:
        return tile_row_vectors(s, p, c, vec)
    # consumer: [outer..., a.o, b.o, a.i, b.i]
    s = s.apply(Split(c, n - 1, (vec,)))
    if n >= 2:
        s = s.apply(Split(c, n - 2, (rows,)))
        order = list(range(n - 2)) + [n - 2, n, n - 1, n + 1]
        s = s.apply(Reorder(c, tuple(order)))
    n_outer = len(s.stages[c].iters) - (2 if n >= 2 else 1)
    if n_outer > 1:
        s = s.apply(Fuse(c, tuple(range(n_outer))))
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Annotate(c, len(s.stages[c].iters) - 1, Annotation.VECTORIZE))
    # producer: [spatial outer (extent 1)..., reduce..., a.i (unrolled), b.i (vector)]
    n_reduce = len(s.stages[p].op.reduce_axes)
    s = s.apply(Split(p, n - 1, (vec,)))
    if n >= 2:
        s = s.apply(Split(p, n - 2, (rows,)))
    if n >= 2:  # [outer..., a.o, a.i, b.o, b.i, red...]
        outer, tile = list(range(n - 2)) + [n - 2, n], [n - 1, n + 1]
    else:  # [b.o, b.i, red...]
        outer, tile = [0], [1]
    reduce_pos = list(range(len(tile) + len(outer), len(tile) + len(outer) + n_reduce))
    s = s.apply(Reorder(p, tuple(outer + reduce_pos + tile)))
    last = len(s.stages[p].iters) - 1
    if n >= 2 and rows > 1:
        s = s.apply(Annotate(p, last - 1, Annotation.UNROLL))
    s = s.apply(Annotate(p, last, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 0))


def tile_row_vectors(s: State, p: int, c: int, vec: int) -> State:
    """One output row: a tile of up to 8 vectors along it (matrix-vector products), so
    the reduction has independent accumulators instead of one latency-bound chain."""
    n = len(s.stages[c].op.shape)
    vectors = row_factor(-(-s.stages[c].op.shape[-1] // vec))
    s = s.apply(Split(c, n - 1, (vectors, vec)))  # [outer..., j.o, j.u, j.v]
    if n > 1:
        s = s.apply(Fuse(c, tuple(range(n))))
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Annotate(c, len(s.stages[c].iters) - 1, Annotation.VECTORIZE))
    n_reduce = len(s.stages[p].op.reduce_axes)
    s = s.apply(Split(p, n - 1, (vectors, vec)))  # [sp..., j.o, j.u, j.v, red...]
    reduce_pos = list(range(n + 2, n + 2 + n_reduce))
    s = s.apply(Reorder(p, (*range(n), *reduce_pos, n, n + 1)))
    last = len(s.stages[p].iters) - 1
    s = s.apply(Annotate(p, last - 1, Annotation.UNROLL))
    s = s.apply(Annotate(p, last, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 0))


def tile_ragged_row(s: State, p: int, c: int) -> State:
    """A row of a ragged width (attention scores over 197 tokens): tiles of up to 4
    vectors along it, one row each, the last tile partial. The tile loop stays serial
    inside the parallel rows so the lowering can run the partial tile apart."""
    n = len(s.stages[c].op.shape)
    width = s.stages[c].op.shape[-1]
    vectors = min(4, -(-width // VECTOR_LANES))
    s = s.apply(Split(c, n - 1, (vectors, VECTOR_LANES)))  # [outer..., j.o, j.u, j.v]
    if n > 2:
        s = s.apply(Fuse(c, tuple(range(n - 1))))
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Annotate(c, len(s.stages[c].iters) - 1, Annotation.VECTORIZE))
    n_reduce = len(s.stages[p].op.reduce_axes)
    s = s.apply(Split(p, n - 1, (vectors, VECTOR_LANES)))  # [sp..., j.o, j.u, j.v, red...]
    reduce_pos = list(range(n + 2, n + 2 + n_reduce))
    s = s.apply(Reorder(p, (*range(n), *reduce_pos, n, n + 1)))
    last = len(s.stages[p].iters) - 1
    s = s.apply(Annotate(p, last - 1, Annotation.UNROLL))
    s = s.apply(Annotate(p, last, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 1))  # inside the consumer's j.o: one tile at a time


def tile_ragged_rows(s: State, p: int, c: int, vec: int, row_axis: int) -> State:
    """Rows of a ragged count (197 tokens times a weight; `row_axis`, the last axis but
    the columns longer than 1): tile_rows() x vec tiles, the last row tile partial. Column
    tiles run in parallel, the row tiles serially inside them (the lowering runs the
    partial one apart) over a panel of the right operand that stays in cache."""
    return _tile_grid(s, p, c, vec, row_axis, rows_in_parallel=False)


def tile_ragged_grid(s: State, p: int, c: int, row_axis: int) -> State:
    """Ragged columns (197 tokens) of many rows (a ViT's attention scores, 197 x 197):
    tile_rows() x VECTOR_LANES tiles; the row tiles (and the axes outside them) in
    parallel, the column tiles serially inside, so the lowering runs the partial one
    apart (the last row tile keeps a guard per row). One row of up to 4 vectors
    (tile_ragged_row) loaded 4 vectors per 4 FMAs: ViT's scores ran 308 -> 173 us."""
    return _tile_grid(s, p, c, VECTOR_LANES, row_axis, rows_in_parallel=True)


def _tile_grid(
    s: State, p: int, c: int, vec: int, row_axis: int, *, rows_in_parallel: bool
) -> State:
    """tile_rows() x vec tiles of p in consumer c: the row tiles or the column tiles in
    the parallel loop (with the axes outside them), the others serially inside it, p
    computed one tile at a time there."""
    n, r, rows = len(s.stages[c].op.shape), row_axis, tile_rows()
    others = [a if a < r else a + 1 for a in range(n - 1) if a != r]  # after both splits
    tiles = (r, n) if rows_in_parallel else (n, r)
    for k in (c, p):
        s = s.apply(Split(k, n - 1, (vec,)))  # [..., j.o, j.i, red...]
        s = s.apply(Split(k, r, (rows,)))  # [.., r.o, r.i, .., j.o, j.i, red...]
        reduce = list(range(n + 2, n + 2 + len(s.stages[k].op.reduce_axes))) if k == p else []
        s = s.apply(Reorder(k, (*others, *tiles, *reduce, r + 1, n + 1)))
    if others:
        s = s.apply(Fuse(c, tuple(range(len(others) + 1))))  # [others@tile, tile, r.i, j.i]
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Annotate(c, 3, Annotation.VECTORIZE))
    last = len(s.stages[p].iters) - 1
    s = s.apply(Annotate(p, last - 1, Annotation.UNROLL))
    s = s.apply(Annotate(p, last, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 1))  # inside the consumer's serial tile loop


def schedule_reduction(s: State, k: int) -> State:
    """Fused parallel spatial loops; SIMD over the innermost one when reads run along it."""
    st = s.stages[k]
    n, n_red = len(st.op.axes), len(st.op.reduce_axes)
    if n == 0:
        return s
    inner = st.op.axes[-1]
    long_row = n_red == 1 and st.op.reduce_axes[0].extent >= 2 * VECTOR_LANES
    if long_row and reads_rows_along(s.body(k), st.op.reduce_axes[0].var):
        return reduce_rows_in_vectors(s, k)
    if n_red == 2 and _planes_along(s.body(k), st.op.reduce_axes):  # a mean over NCHW planes
        return reduce_rows_in_vectors(s.apply(Fuse(k, (n, n + 1))), k)
    if n >= 2 and inner.extent >= 4 and _reads_along(s.body(k), inner.var):
        vec = vector_factor(inner.extent)
        s = s.apply(Split(k, n - 1, (vec,)))  # [sp..., in.o, in.i, red...]
        order = list(range(n + 1 - 1)) + [n + 1 + r for r in range(n_red)] + [n]
        s = s.apply(Reorder(k, tuple(order)))
        s = _fuse_parallel(s, k, n)
        return s.apply(Annotate(k, len(s.stages[k].iters) - 1, Annotation.VECTORIZE))
    return _fuse_parallel(s, k, n)


def reduce_rows_in_vectors(s: State, k: int) -> State:
    """A reduction along contiguous rows (a softmax's max and sum of exps, a mean): the
    reduction split by VECTOR_LANES and factored (Rfactor), so a vector of partial
    results runs along the row (a partial last vector is masked), then one short
    reduction across it; both inside the fused parallel loop over the rows."""
    n = len(s.stages[k].op.axes)
    s = s.apply(Split(k, n, (VECTOR_LANES,)))  # [rows..., k.o, k.i]
    s = s.apply(Rfactor(k, n + 1))  # stage k: [rows..., kf] over kr; k + 1 combines
    s = s.apply(Reorder(k, (*range(n), n + 1, n)))  # [rows..., kr, kf]
    s = s.apply(Annotate(k, n + 1, Annotation.VECTORIZE))
    s = _fuse_parallel(s, k + 1, n)
    return s.apply(ComputeAt(k, k + 1, 0))


def schedule_const_transform(s: State, k: int) -> State:
    """A constant-matrix transform pass (Winograd's): the axes but the tile's
    (`attrs["tile_axes"]`) and the last fused in parallel, the tile's axes unrolled
    inside them (the constant one's sums fold to plain code), the last axis a SIMD
    loop innermost. The first of two passes runs inside the second's parallel loop,
    on a tile that stays in cache. Against both passes at root (with only the
    constant axis inside, or both tile axes) it was the fastest in 7 of 10 shape-runs
    of three interleaved runs on ResNet-18's Winograd shapes (docs/benchmarks.md#winograd)."""
    n = len(s.stages[k].iters)
    consts = const_axes(s, k)
    tile = sorted(set(s.stages[k].op.attr("tile_axes", ())) | set(consts))
    assert n - 1 not in tile, "a tile axis cannot be the SIMD axis"
    outer = [i for i in range(n - 1) if i not in tile]
    s = s.apply(Reorder(k, (*outer, *tile, n - 1)))
    consumers = s.consumers(k)
    inside = len(consumers) == 1 and bool(const_axes(s, consumers[0]))
    if not inside:
        s = _fuse_parallel(s, k, len(outer))
    first = len(s.stages[k].iters) - 1 - len(tile)
    for i in range(first, first + len(tile)):
        s = s.apply(Annotate(k, i, Annotation.UNROLL))
    s = s.apply(Annotate(k, len(s.stages[k].iters) - 1, Annotation.VECTORIZE))
    return s.apply(ComputeAt(k, consumers[0], 0)) if inside else s


def schedule_elementwise(s: State, k: int) -> State:
    st = s.stages[k]
    n = len(st.op.axes)
    if n == 0:  # a scalar (0-d) stage: no loop at all
        return s
    if n >= 2 and is_ragged(st.op.shape[-1]):  # [parallel rows, j.o (serial), j.i (SIMD)]
        s = s.apply(Split(k, n - 1, (VECTOR_LANES,)))
        s = _fuse_parallel(s, k, n - 1)
        return s.apply(Annotate(k, len(s.stages[k].iters) - 1, Annotation.VECTORIZE))
    vec = vector_factor(st.op.shape[-1])
    if vec > 1:
        s = s.apply(Split(k, n - 1, (vec,)))
        s = _fuse_parallel(s, k, n)
        return s.apply(Annotate(k, len(s.stages[k].iters) - 1, Annotation.VECTORIZE))
    return _fuse_parallel(s, k, n)


def _fuse_parallel(s: State, k: int, count: int) -> State:
    if count > 1:
        s = s.apply(Fuse(k, tuple(range(count))))
    if s.stages[k].iters[0].extent != 1:
        s = s.apply(Annotate(k, 0, Annotation.PARALLEL))
    return s


def _planes_along(body: Expr, axes: tuple[IterVar, ...]) -> bool:
    """Reductions over whole trailing planes: every input read that uses the two axes
    indexes its last two dimensions with them, as they are, and those dimensions are
    the axes' extents (a global pool over NCHW data), so that one fused axis runs along
    contiguous memory; and the planes are two or more whole vectors (a partial one
    loads through its fused index: a global pool over 14x14 planes ran 3.4x slower)."""
    (ry, rx) = axes
    plane = ry.extent * rx.extent
    if plane < 2 * VECTOR_LANES or plane % VECTOR_LANES:
        return False
    reads = [n for n in walk(body) if isinstance(n, TensorRead)]
    using = [r for r in reads if {ry.var, rx.var} & set(walk(r))]
    return bool(using) and all(
        r.indices[-2] is ry.var
        and r.indices[-1] is rx.var
        and tuple(r.tensor.shape[-2:]) == (ry.extent, rx.extent)
        and all(not {ry.var, rx.var} & set(walk(i)) for i in r.indices[:-2])
        for r in using
    )


def _reads_along(body: Expr, var: Var) -> bool:
    """Every input read uses `var` in its last index (so lanes are near in memory)."""
    reads = [n for n in walk(body) if isinstance(n, TensorRead)]
    return bool(reads) and all(var in set(walk(r.indices[-1])) for r in reads)


def cpu_count() -> int:
    return os.cpu_count() or 1
