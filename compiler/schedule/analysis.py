"""Questions about a stage in a schedule state, shared by the default schedule
and the sketch rules (docs/search.md#sketch-rules)."""

from __future__ import annotations

from compiler.ops.tags import (
    CONV2D_BLOCKED,
    CONV2D_NCHW,
    CONV2D_NCHWC,
    DEPTHWISE_CONV2D_NCHW,
    WINOGRAD_TRANSFORM,
    has_tag,
)
from compiler.schedule.stage import Attach
from compiler.schedule.state import State
from compiler.target import host_target
from compiler.te.dag import is_strictly_inlineable, needs_multi_level_tiling, needs_rfactor
from compiler.te.expr import BinOp, Call, Expr, IntImm, TensorRead, Var
from compiler.te.kinds import BinOpKind, MathFunc
from compiler.te.traverse import walk


def elementwise_consumer(s: State, k: int) -> int | None:
    """The single root consumer of stage k that reads it element by element
    (looking through inlined stages), not itself a reduction."""
    consumers = s.consumers(k)
    if len(consumers) != 1:
        return None
    c = consumers[0]
    cst, pst = s.stages[c], s.stages[k]
    if cst.attach is not Attach.ROOT or cst.op.reduce_axes or cst.op.shape != pst.op.shape:
        return None
    axis_vars = [a.var for a in cst.op.axes]
    for node in walk(s.body(c)):
        is_read = isinstance(node, TensorRead) and node.tensor is pst.output
        if is_read and list(node.indices) != axis_vars:
            return None
    return c


def reads_rows_along(body: Expr, var: Var) -> bool:
    """Every input read that uses `var` uses it in its last index only, and one does."""
    reads = [n for n in walk(body) if isinstance(n, TensorRead)]
    using = [r for r in reads if var in set(walk(r))]
    return bool(using) and all(
        var in set(walk(r.indices[-1])) and all(var not in set(walk(i)) for i in r.indices[:-1])
        for r in using
    )


# A blocked conv with a kernel wider than this reads its padding from a buffer: with
# the pad inlined, its guards cost 5x5 and 7x7 convs 30-45 % (7x7 ResNet stem 0.65x
# onnxruntime inlined, 0.99x materialized), while 3x3 convs run 0-25 % faster inlined.
INLINE_PAD_MAX_KERNEL = 3
# So does a depthwise conv on NCHW data of at least this many columns: ConvNeXt's 7x7
# ones on 56 x 56 ran 1012 -> 453 us, on 28 x 28 354 -> 327; on 14 x 14 and 7 x 7 the
# copy cost more than the guards (142 -> 182, 128 -> 140 us; Zen 4, 1 thread).
DEPTHWISE_PAD_MIN_WIDTH = 28
# And a grouped conv on NCHW data of at least this many output columns: RegNet's 3x3
# stride-2 ones writing 56 columns ran 1008 -> 757 us; 28, 14 and 7 columns 4-40 %
# slower with the copy (Zen 4, AVX-512, 1 thread).
GROUPED_PAD_MIN_WIDTH = 56


def pads_wide_conv(s: State, k: int) -> bool:
    """Stage k pads the input of a conv that reads its padding faster from a buffer
    (the default schedule computes such a pad at root): a blocked conv whose kernel is
    wider than INLINE_PAD_MAX_KERNEL; a depthwise conv on NCHW data of such a kernel
    and at least DEPTHWISE_PAD_MIN_WIDTH columns; a grouped conv on NCHW data of at
    least GROUPED_PAD_MIN_WIDTH columns; and any conv on NCHW data where the target has
    no mask registers (AVX2: an inlined pad's guard is a vector compare and a masked
    load per lane; RegNet's grouped convs ran 1.1-4.2x faster with the copy, AVX2 code
    on Zen 4)."""
    st = s.stages[k]
    if st.is_placeholder or not has_tag(st.op, "pad"):
        return False
    masks = host_target().has_mask_registers
    for op in (s.stages[c].op for c in s.consumers(k)):
        if op.tag in (CONV2D_NCHW, DEPTHWISE_CONV2D_NCHW) and not masks:
            return True
        grouped = op.tag == CONV2D_NCHW and op.attr("groups", 1) > 1
        if grouped and op.shape[-1] >= GROUPED_PAD_MIN_WIDTH:
            return True
        if op.tag not in (CONV2D_NCHWC, CONV2D_BLOCKED, DEPTHWISE_CONV2D_NCHW):
            continue
        wide = max(a.extent for a in op.reduce_axes[-2:]) > INLINE_PAD_MAX_KERNEL
        if wide and (op.tag != DEPTHWISE_CONV2D_NCHW or op.shape[-1] >= DEPTHWISE_PAD_MIN_WIDTH):
            return True
    return False


# Math functions that cost more than storing their value and loading it back (tens of
# vector instructions each: compiler/codegen/vecmath.py, or a call per lane)
COSTLY_FUNCS = frozenset(MathFunc) - {
    MathFunc.SQRT,
    MathFunc.RSQRT,
    MathFunc.ABS,
    MathFunc.FLOOR,
    MathFunc.CEIL,
}


def keeps_costly_values(s: State, k: int) -> bool:
    """Stage k applies a costly math function to each element and a reduction reads it
    besides another stage (softmax's exp, read by the row sum and the normalization):
    inlined, each reader would compute the function again."""
    st = s.stages[k]
    if st.is_placeholder or st.op.reduce_axes or s.is_output(k):
        return False
    readers = s.consumers(k)
    if len(readers) < 2 or not any(s.stages[c].op.reduce_axes for c in readers):
        return False
    return any(isinstance(n, Call) and n.func in COSTLY_FUNCS for n in walk(st.op.body))


def transposes_tile_operand(s: State, k: int) -> bool:
    """Stage k re-indexes an input so that a matrix product's vector lanes, contiguous
    in k's output, are far apart in the input (attention's K^T: its rows are the
    input's columns). Inlined, the product gathers every lane of that operand once per
    register tile; computed at root it is copied once and then loaded as vectors (a
    BERT encoder's scores Q K^T: 113 -> 47 us, Zen 4)."""
    st = s.stages[k]
    if st.is_placeholder or st.op.reduce_axes or not st.op.axes:
        return False
    tiled = [c for c in s.consumers(k) if needs_multi_level_tiling(s.stages[c].op)]
    if not tiled:
        return False
    lane = st.op.axes[-1].var
    for c in tiled:
        op = s.stages[c].op
        v = op.axes[-1].var
        reads = [n for n in walk(op.body) if isinstance(n, TensorRead) and n.tensor is st.output]
        if not reads or any(v not in set(walk(r.indices[-1])) for r in reads):
            return False
    reads = [n for n in walk(s.body(k)) if isinstance(n, TensorRead)]
    return any(_stride(r, lane) not in (0, 1, None) for r in reads)


_INDEX_OPS = {
    BinOpKind.ADD: lambda a, b: a + b,
    BinOpKind.SUB: lambda a, b: a - b,
    BinOpKind.MUL: lambda a, b: a * b,
    BinOpKind.FLOORDIV: lambda a, b: a // b,
    BinOpKind.FLOORMOD: lambda a, b: a % b,
    BinOpKind.MIN: min,
    BinOpKind.MAX: max,
}


def _stride(read: TensorRead, var: Var) -> int | None:
    """Elements between the addresses `read` reads at var = 1 and var = 0, every other
    variable 0 (None for an index that is no integer arithmetic of variables)."""

    def value(e: Expr, at: int) -> int:
        if isinstance(e, IntImm):
            return e.value
        if isinstance(e, Var):
            return at if e is var else 0
        if isinstance(e, BinOp) and e.op in _INDEX_OPS:
            return _INDEX_OPS[e.op](value(e.a, at), value(e.b, at))
        raise TypeError(e)

    try:
        flat = [0, 0]
        for at in (0, 1):
            for extent, index in zip(read.tensor.shape, read.indices):
                flat[at] = flat[at] * extent + value(index, at)
    except (TypeError, ZeroDivisionError):
        return None
    return flat[1] - flat[0]


def blocked_consumer(s: State, k: int) -> int | None:
    """For a blocked conv [N, F/b, OH, OW, b], its single root consumer that reads it
    back as [N, F, OH, OW] (looking through inlined stages), not itself a reduction."""
    st = s.stages[k]
    if st.is_placeholder or st.op.tag != CONV2D_NCHWC:
        return None
    consumers = s.consumers(k)
    if len(consumers) != 1:
        return None
    n, blocks, oh, ow, block = st.op.shape
    c = consumers[0]
    ok = s.stages[c].attach is Attach.ROOT and not s.stages[c].op.reduce_axes
    shape = s.stages[c].op.shape
    fits = len(shape) == 4 and shape[::2] == (n, oh) and shape[3] == ow
    return c if ok and fits and (blocks - 1) * block < shape[1] <= blocks * block else None


def unblocks_conv(s: State, k: int) -> bool:
    """Stage k only reads blocked convs, without a reduction: the [N, F/b, OH, OW, b] to
    NCHW re-indexing (ops.conv2d_nchwc's unpack_nchwc)."""
    st = s.stages[k]
    if st.is_placeholder or st.op.reduce_axes or not st.op.inputs:
        return False
    return all(src.tag == CONV2D_NCHWC for src in st.op.inputs)


def const_axes(s: State, k: int) -> tuple[int, ...]:
    """The axes of stage k that index constant matrices (a Winograd transform's;
    compiler/ops/winograd.py): unrolled, its sums become plain code. () for others."""
    st = s.stages[k]
    if st.is_placeholder or not has_tag(st.op, WINOGRAD_TRANSFORM):
        return ()
    return tuple(st.op.attr("const_axes", ()))


def pads_transform(s: State, k: int) -> bool:
    """Stage k pads the input of a constant-matrix transform. Computed at root: inlined,
    each of the transform's strided vector loads would be a masked gather."""
    st = s.stages[k]
    if st.is_placeholder or not has_tag(st.op, "pad"):
        return False
    return any(const_axes(s, c) for c in s.consumers(k))


def should_inline(s: State, k: int) -> bool:
    """A non-output stage that is strictly inlineable, or that re-indexes a blocked conv
    (a deviation from Ansor, whose rule would keep it as a pass of its own: inlined, the
    conv's epilogue reads the conv directly, and the conv can be tiled into it); not one
    whose values cost more to recompute than to read (`keeps_costly_values`) or that a
    product would gather (`transposes_tile_operand`)."""
    st = s.stages[k]
    if st.is_placeholder or s.is_output(k):
        return False
    if pads_transform(s, k) or keeps_costly_values(s, k) or transposes_tile_operand(s, k):
        return False
    return is_strictly_inlineable(st.op) or unblocks_conv(s, k)


def needs_tiling(s: State, k: int) -> bool:
    st = s.stages[k]
    return not st.is_placeholder and needs_multi_level_tiling(st.op)


def wants_rfactor(s: State, k: int, cores: int) -> bool:
    st = s.stages[k]
    return not st.is_placeholder and st.op.tag != "cache_copy" and needs_rfactor(st.op, cores)
