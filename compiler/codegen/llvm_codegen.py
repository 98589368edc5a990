"""Loop IR to LLVM IR: one external `void name(ptr, ...)` function per `PrimFunc`.

The statement dispatcher lives here; expressions are in `exprs`, loads and stores
in `memory`, loop forms in `loops` and `parallel`. The emitted IR is plain and
unoptimized; `build` runs LLVM's O3 pipeline over it.
"""

from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir

from compiler.codegen import exprs, memory
from compiler.codegen.context import CodegenError, FnContext, ModuleState
from compiler.codegen.intrinsics import (
    I64,
    ITEMSIZE,
    PTR,
    VOID,
    all_true,
    declare,
    stack_slot,
    storage_type,
    to_lanes,
)
from compiler.codegen.lane_reduction import emit_lane_reduction, is_lane_reduction
from compiler.codegen.loops import emit_serial, emit_unrolled, emit_vectorized
from compiler.codegen.parallel import emit_parallel
from compiler.codegen.target import target_machine
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    ForKind,
    IfThenElse,
    PrimFunc,
    Scope,
    Seq,
    Stmt,
    Store,
)
from compiler.target import Target

LOCAL_STACK_LIMIT_BYTES = 256 * 1024  # larger scratch goes to the heap


def emit_module(funcs: Sequence[PrimFunc], target: Target) -> ir.Module:
    """An LLVM module holding one external function per `PrimFunc` (plus outlined helpers)."""
    module = ir.Module(name=funcs[0].name if funcs else "empty")
    module.triple = target.triple
    module.data_layout = str(target_machine(target).target_data)
    shared = ModuleState(module, vector_bytes=target.vector_bytes)
    for func in funcs:
        emit_function(shared, func)
    return module


def emit_function(shared: ModuleState, func: PrimFunc) -> ir.Function:
    """`void name(ptr noalias align 64 %A, ...)`, one pointer per parameter in order."""
    if len(set(map(id, func.params))) != len(func.params):
        raise CodegenError(f"{func.name}: a buffer appears twice among the parameters")
    fn = ir.Function(shared.module, ir.FunctionType(VOID, [PTR] * len(func.params)), func.name)
    fn.attributes.add("nounwind")
    ctx = FnContext.start(shared, fn, in_parallel=False)
    for arg, buf in zip(fn.args, func.params):
        arg.name = buf.name
        arg.add_attribute("noalias")
        arg.add_attribute("captures(none)")
        arg.attributes.align = 64
        arg.attributes.dereferenceable = buf.size * ITEMSIZE[buf.dtype]
        ctx.buffers[buf] = arg
    emit_stmt(ctx, func.body)
    ctx.finish()
    return fn


def emit_stmt(ctx: FnContext, s: Stmt) -> None:
    match s:
        case Seq(stmts):
            for x in stmts:
                emit_stmt(ctx, x)
        case For():
            _emit_for(ctx, s)
        case Store():
            memory.emit_store(ctx, s)
        case IfThenElse():
            _emit_if(ctx, s)
        case Allocate():
            _emit_allocate(ctx, s)
        case _:
            raise CodegenError(f"cannot generate code for statement {s!r}")


def _emit_for(ctx: FnContext, loop: For) -> None:
    if loop.extent <= 0:
        return
    if loop.extent == 1:  # split leftovers: no loop at all
        with ctx.bind(loop.var, ir.Constant(I64, 0)):
            emit_stmt(ctx, loop.body)
        return
    if is_lane_reduction(ctx, loop):
        emit_lane_reduction(ctx, loop)
        return
    match loop.kind:
        case ForKind.SERIAL:
            emit_serial(ctx, loop, emit_stmt)
        case ForKind.UNROLLED:
            emit_unrolled(ctx, loop, emit_stmt)
        case ForKind.VECTORIZED:
            emit_vectorized(ctx, loop, emit_stmt)
        case ForKind.PARALLEL:
            emit_parallel(ctx, loop, emit_stmt)


def _emit_if(ctx: FnContext, s: IfThenElse) -> None:
    b = ctx.builder
    if ctx.depends(s.cond):  # per lane (vectorize.can_vectorize allowed it): masks
        cond = to_lanes(b, exprs.emit_expr(ctx, s.cond), ctx.vec.lanes)
        live = all_true(ctx.vec.lanes) if ctx.mask is None else ctx.mask
        with ctx.masked(b.and_(live, cond)):
            emit_stmt(ctx, s.then_case)
        if s.else_case is not None:
            with ctx.masked(b.and_(live, b.not_(cond))):
                emit_stmt(ctx, s.else_case)
        return
    cond = exprs.emit_expr(ctx, s.cond)
    then_bb = ctx.fn.append_basic_block("if.then")
    else_bb = ctx.fn.append_basic_block("if.else") if s.else_case is not None else None
    end_bb = ctx.fn.append_basic_block("if.end")
    b.cbranch(cond, then_bb, else_bb or end_bb)
    for block, case in ((then_bb, s.then_case), (else_bb, s.else_case)):
        if block is None or case is None:
            continue
        b.position_at_end(block)
        emit_stmt(ctx, case)
        b.branch(end_bb)
    b.position_at_end(end_bb)


def _emit_allocate(ctx: FnContext, s: Allocate) -> None:
    """Small local scratch is a stack slot in the entry block; anything else is heap."""
    buf = s.buffer
    nbytes = buf.size * ITEMSIZE[buf.dtype]
    on_stack = buf.scope is Scope.LOCAL and nbytes <= LOCAL_STACK_LIMIT_BYTES
    ptr = _stack_slot(ctx, buf) if on_stack else _heap_alloc(ctx, nbytes)
    old = ctx.buffers.get(buf)
    ctx.buffers[buf] = ptr
    emit_stmt(ctx, s.body)
    if old is None:
        del ctx.buffers[buf]
    else:
        ctx.buffers[buf] = old
    if not on_stack:
        ctx.builder.call(declare(ctx.module, "free", VOID, [PTR]), [ptr])


def _stack_slot(ctx: FnContext, buf: Buffer) -> ir.Value:
    """One alloca per buffer and function: unrolled copies reuse it (their lifetimes
    do not overlap), so the frame does not grow with the unroll factor."""
    slot = ctx.allocas.get(buf)
    if slot is None:
        ty = ir.ArrayType(storage_type(buf.dtype), buf.size)
        slot = ctx.allocas[buf] = stack_slot(ctx.entry, ty, buf.name, align=64)
    return slot


def _heap_alloc(ctx: FnContext, nbytes: int) -> ir.Value:
    aligned_alloc = declare(ctx.module, "aligned_alloc", PTR, [I64, I64])
    size = ir.Constant(I64, max(64, -(-nbytes // 64) * 64))  # a multiple of the alignment
    return ctx.builder.call(aligned_alloc, [ir.Constant(I64, 64), size])
