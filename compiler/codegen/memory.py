"""Loads and stores: scalar, contiguous vector, gather/scatter, and masked forms.

Every buffer is 64-byte aligned (parameters by contract, scratch by allocation),
so a vector access whose lane-0 index is provably a multiple of 16 floats
is emitted with alignment 64, others with the element's alignment.
"""

from __future__ import annotations

from llvmlite import ir

from compiler.codegen import exprs
from compiler.codegen.context import CodegenError, FnContext
from compiler.codegen.intrinsics import (
    I1,
    I8,
    I32,
    ITEMSIZE,
    PTR,
    all_true,
    intrinsic,
    lanes_of,
    storage_type,
    to_lanes,
    vector_gep,
    with_lanes,
)
from compiler.codegen.vectorize import affine_coef, base_index, divisor
from compiler.lower.loop_ir import Buffer, Load, Store
from compiler.te.expr import Expr

MAX_STRIDE = 4  # wider strides read too much of each span: a gather then


def buffer_ptr(ctx: FnContext, buf: Buffer) -> ir.Value:
    ptr = ctx.buffers.get(buf)
    if ptr is None:
        raise CodegenError(f"buffer {buf.name!r} is neither a parameter nor allocated here")
    return ptr


def element_ptr(ctx: FnContext, buf: Buffer, index: ir.Value) -> ir.Value:
    """The address of `buf[index]` for a scalar i64 index."""
    base = buffer_ptr(ctx, buf)
    if isinstance(index, ir.Constant) and index.constant == 0:
        return base
    return ctx.builder.gep(base, [index], inbounds=True, source_etype=storage_type(buf.dtype))


def from_storage(b: ir.IRBuilder, v: ir.Value, dtype: str) -> ir.Value:
    """A loaded element as a register value (signed integers sign-extended to i64, unsigned
    ones zero-extended, bool to i1)."""
    if dtype in ("int32", "int8", "int16"):
        return b.sext(v, with_lanes(ir.IntType(64), lanes_of(v)))
    if dtype in ("uint8", "uint16", "uint32"):
        return b.zext(v, with_lanes(ir.IntType(64), lanes_of(v)))
    if dtype == "bool":
        return b.trunc(v, with_lanes(I1, lanes_of(v)))
    return v


def to_storage(b: ir.IRBuilder, v: ir.Value, dtype: str) -> ir.Value:
    if dtype in ("int32", "int8", "uint8", "int16", "uint16", "uint32"):
        return b.trunc(v, with_lanes(storage_type(dtype), lanes_of(v)))
    if dtype == "bool":
        return b.zext(v, with_lanes(I8, lanes_of(v)))
    return v


def _align(dtype: str, index: Expr) -> int:
    """The provable alignment of `buf[index]` in bytes (index an Expr at lane 0)."""
    item = ITEMSIZE[dtype]
    offset = divisor(index) * item
    if offset == 0:
        return 64
    return min(64, max(item, offset & -offset))


# ------------------------------------------------------------------ loads


def emit_load(ctx: FnContext, load: Load) -> ir.Value:
    """`buf[index]`: a vector when the index varies across lanes."""
    if ctx.depends(load.index):
        return _vector_load(ctx, load)
    return _scalar_load(ctx, load.buffer, exprs.emit_expr(ctx, load.index))


def _scalar_load(ctx: FnContext, buf: Buffer, index: ir.Value) -> ir.Value:
    if ctx.mask is not None:
        return _guarded_scalar_load(ctx, buf, index)
    b = ctx.builder
    v = b.load(element_ptr(ctx, buf, index), typ=storage_type(buf.dtype))
    v.align = ITEMSIZE[buf.dtype]
    return from_storage(b, v, buf.dtype)


def _guarded_scalar_load(ctx: FnContext, buf: Buffer, index: ir.Value) -> ir.Value:
    """A lane-invariant load inside a vector select: done only if some lane is live."""
    b, mask = ctx.builder, ctx.mask
    assert mask is not None
    reduce_or = intrinsic(ctx.module, "llvm.vector.reduce.or", I1, [mask.type], [mask.type])
    any_live = b.call(reduce_or, [mask])
    start = b.block
    load_bb = ctx.fn.append_basic_block("guard.load")
    done_bb = ctx.fn.append_basic_block("guard.end")
    b.cbranch(any_live, load_bb, done_bb)
    b.position_at_end(load_bb)
    with ctx.masked(None):
        v = _scalar_load(ctx, buf, index)
    b.branch(done_bb)
    b.position_at_end(done_bb)
    phi = b.phi(v.type)
    phi.add_incoming(v, load_bb)
    phi.add_incoming(ir.Constant(v.type, None), start)
    return phi


def _vector_load(ctx: FnContext, load: Load) -> ir.Value:
    assert ctx.vec is not None
    b, buf, lanes = ctx.builder, load.buffer, ctx.vec.lanes
    coef = affine_coef(load.index, ctx.vec.var)
    vt = storage_type(buf.dtype, lanes)
    if coef == 0:  # the variable cancels out
        return _scalar_load(
            ctx, buf, exprs.emit_expr(ctx, base_index(load.index, ctx.vec.var, ctx.vec.offset))
        )
    if coef == 1:
        base = base_index(load.index, ctx.vec.var, ctx.vec.offset)
        ptr = element_ptr(ctx, buf, exprs.emit_expr(ctx, base))
        align = _align(buf.dtype, base)
        if ctx.mask is None:
            v = b.load(ptr, typ=vt)
            v.align = align
        else:
            fn = intrinsic(
                ctx.module, "llvm.masked.load", vt, [PTR, I32, ctx.mask.type, vt], [vt, PTR]
            )
            v = b.call(fn, [ptr, ir.Constant(I32, align), ctx.mask, ir.Constant(vt, None)])
        return from_storage(b, v, buf.dtype)
    if coef is not None and 2 <= coef <= MAX_STRIDE:
        return _strided_load(ctx, load, coef)
    ptrs = _lane_pointers(ctx, buf, load.index)
    mask = ctx.mask if ctx.mask is not None else all_true(lanes)
    fn = intrinsic(
        ctx.module, "llvm.masked.gather", vt, [ptrs.type, I32, mask.type, vt], [vt, ptrs.type]
    )
    v = b.call(fn, [ptrs, ir.Constant(I32, ITEMSIZE[buf.dtype]), mask, ir.Constant(vt, None)])
    return from_storage(b, v, buf.dtype)


def _strided_load(ctx: FnContext, load: Load, stride: int) -> ir.Value:
    """Lanes `stride` elements apart (stride-2 pools and convs): one masked load of the
    span, then a shuffle that keeps every stride-th element. The mask keeps only the
    wanted elements, so nothing past them is read; x86 lowers it to contiguous loads
    and permutes, several times faster than a gather."""
    assert ctx.vec is not None
    b, buf, lanes = ctx.builder, load.buffer, ctx.vec.lanes
    span = lanes * stride
    wide = storage_type(buf.dtype, span)
    base = base_index(load.index, ctx.vec.var, ctx.vec.offset)
    ptr = element_ptr(ctx, buf, exprs.emit_expr(ctx, base))
    pattern = ir.Constant(ir.VectorType(I1, span), [int(j % stride == 0) for j in range(span)])
    if ctx.mask is None:
        mask = pattern
    else:
        spread = ir.Constant(ir.VectorType(I32, span), [j // stride for j in range(span)])
        mask = b.and_(b.shuffle_vector(ctx.mask, ir.Constant(ctx.mask.type, None), spread), pattern)
    fn = intrinsic(ctx.module, "llvm.masked.load", wide, [PTR, I32, mask.type, wide], [wide, PTR])
    align = ir.Constant(I32, _align(buf.dtype, base))
    v = b.call(fn, [ptr, align, mask, ir.Constant(wide, None)])
    keep = ir.Constant(ir.VectorType(I32, lanes), [j * stride for j in range(lanes)])
    return from_storage(b, b.shuffle_vector(v, ir.Constant(wide, None), keep), buf.dtype)


def _lane_pointers(ctx: FnContext, buf: Buffer, index: Expr) -> ir.Value:
    """A vector of the addresses each lane accesses (for gather and scatter)."""
    assert ctx.vec is not None
    idx = to_lanes(ctx.builder, exprs.emit_expr(ctx, index), ctx.vec.lanes)
    return vector_gep(ctx.builder, storage_type(buf.dtype), buffer_ptr(ctx, buf), idx)


# ------------------------------------------------------------------ stores


def emit_store(ctx: FnContext, store: Store) -> None:
    """`buf[index] = value`, as a vector store or scatter when the index varies."""
    emit_store_value(ctx, store, exprs.emit_expr(ctx, store.value))


def emit_store_value(ctx: FnContext, store: Store, value: ir.Value) -> None:
    """`buf[index] = value` for an already emitted value."""
    b, buf = ctx.builder, store.buffer
    if ctx.depends(store.index):
        _vector_store(ctx, store, value)
        return
    if lanes_of(value) or ctx.mask is not None:
        raise CodegenError(f"store to {buf.name}[{store.index!r}] mixes lanes into one element")
    ptr = element_ptr(ctx, buf, exprs.emit_expr(ctx, store.index))
    st = b.store(to_storage(b, value, buf.dtype), ptr)
    st.align = ITEMSIZE[buf.dtype]


def _vector_store(ctx: FnContext, store: Store, value: ir.Value) -> None:
    assert ctx.vec is not None
    b, buf, lanes = ctx.builder, store.buffer, ctx.vec.lanes
    data = to_storage(b, to_lanes(b, value, lanes), buf.dtype)
    if affine_coef(store.index, ctx.vec.var) == 1:
        base = base_index(store.index, ctx.vec.var, ctx.vec.offset)
        ptr = element_ptr(ctx, buf, exprs.emit_expr(ctx, base))
        if ctx.mask is None:
            st = b.store(data, ptr)
            st.align = _align(buf.dtype, base)
        else:  # the lanes a per-lane condition keeps (llvm_codegen._emit_if)
            fn = intrinsic(
                ctx.module,
                "llvm.masked.store",
                ir.VoidType(),
                [data.type, PTR, I32, ctx.mask.type],
                [data.type, PTR],
            )
            b.call(fn, [data, ptr, ir.Constant(I32, _align(buf.dtype, base)), ctx.mask])
        return
    # any other index: lanes are written in order, so the last lane wins on collisions
    ptrs = _lane_pointers(ctx, buf, store.index)
    fn = intrinsic(
        ctx.module,
        "llvm.masked.scatter",
        ir.VoidType(),
        [data.type, ptrs.type, I32, ir.VectorType(I1, lanes)],
        [data.type, ptrs.type],
    )
    mask = ctx.mask if ctx.mask is not None else all_true(lanes)
    b.call(fn, [data, ptrs, ir.Constant(I32, ITEMSIZE[buf.dtype]), mask])
