"""A loop that folds a short vector of partial results into one element, as a tree.

A factored reduction (Rfactor: a softmax's row max and sum, a layer norm's mean) ends
with `for k in 0..16: acc[i] = acc[i] + part[k]`: sixteen dependent scalar adds, some
50 cycles of latency per row. Here that loop is one vector load of `part`, then halves
combined in log2(16) = 4 steps, then the old value of `acc[i]`. The adds run in a
different order than the loop's (as the factoring already reordered them). A row of
a layer norm waits on two of these: with AVX2 code, ViT's layer norm a row at a time
ran 0.83x the stage-by-stage schedule with the scalar chain, 1.19x with the tree.
"""

from __future__ import annotations

from llvmlite import ir

from compiler.codegen import exprs, memory
from compiler.codegen.context import FnContext, VecLoop
from compiler.codegen.intrinsics import I32
from compiler.codegen.vectorize import affine_coef
from compiler.lower.loop_ir import For, ForKind, Load, Store
from compiler.te.kinds import BinOpKind
from compiler.te.traverse import free_vars

_OPS = (BinOpKind.ADD, BinOpKind.MAX, BinOpKind.MIN)
MAX_LANES = 64


def is_lane_reduction(ctx: FnContext, loop: For) -> bool:
    """`for k: acc[i] = acc[i] <op> part[base + k]` over a power-of-two extent up to
    MAX_LANES, float, with `i` free of k, outside any vectorized loop."""
    if ctx.vec is not None or loop.kind not in (ForKind.SERIAL, ForKind.UNROLLED):
        return False
    if loop.extent < 4 or loop.extent > MAX_LANES or loop.extent & (loop.extent - 1):
        return False
    st = loop.body
    if not isinstance(st, Store) or st.buffer.dtype != "float32":
        return False
    value = st.value
    if getattr(value, "op", None) not in _OPS:
        return False
    acc, part = value.a, value.b
    return (
        isinstance(acc, Load)
        and acc.buffer is st.buffer
        and acc.index == st.index
        and loop.var not in free_vars(st.index)
        and isinstance(part, Load)
        and part.buffer.dtype == "float32"
        and affine_coef(part.index, loop.var) == 1
    )


def emit_lane_reduction(ctx: FnContext, loop: For) -> None:
    """The loop (is_lane_reduction) as a vector load and a tree of halves."""
    st = loop.body
    op, part = st.value.op, st.value.b
    b = ctx.builder
    with ctx.vectorized(VecLoop(loop.var, loop.extent)):
        v = memory.emit_load(ctx, part)
    lanes = loop.extent
    while lanes > 1:  # combine the low half with the high half
        lanes //= 2
        lo = b.shuffle_vector(v, v, _lanes(0, lanes))
        hi = b.shuffle_vector(v, v, _lanes(lanes, lanes))
        v = exprs.float_binop(b, op, lo, hi)
    v = b.extract_element(v, ir.Constant(I32, 0))
    acc = memory.emit_load(ctx, st.value.a)
    memory.emit_store_value(ctx, st, exprs.float_binop(b, op, acc, v))


def _lanes(start: int, count: int) -> ir.Constant:
    return ir.Constant(ir.VectorType(I32, count), [start + i for i in range(count)])
