"""Loops: serial (a phi-counted LLVM loop), unrolled (repeated in Python), vectorized.

Every function takes `emit` (the statement emitter) for the loop body, so this
module does not depend on the statement dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from compiler.codegen.context import FnContext, VecLoop
from compiler.codegen.intrinsics import I64
from compiler.codegen.vectorize import can_vectorize, contains_loop, strip_mine
from compiler.lower.loop_ir import For, Stmt

EmitStmt = Callable[[FnContext, Stmt], None]

MAX_UNROLL = 1024  # beyond this an UNROLLED request becomes a serial loop (code size)
MAX_VECTOR_CHUNKS = 8  # wider vectorized loops become a serial loop of register-wide ones


def counted_loop(
    ctx: FnContext,
    name: str,
    start: ir.Value,
    stop: ir.Value,
    body: Callable[[ir.Value], None],
    *,
    may_be_empty: bool,
) -> None:
    """`for iv in [start, stop)`, bottom-tested (a rotated loop, as LLVM likes it)."""
    b = ctx.builder
    header = ctx.fn.append_basic_block(f"{name}.loop")
    exit_bb = ctx.fn.append_basic_block(f"{name}.exit") if may_be_empty else None
    preheader = b.block
    if exit_bb is not None:
        b.cbranch(b.icmp_signed("<", start, stop), header, exit_bb)
    else:
        b.branch(header)
    b.position_at_end(header)
    iv = b.phi(I64, name=name)
    iv.add_incoming(start, preheader)
    body(iv)
    step = b.add(iv, ir.Constant(I64, 1), flags=("nuw", "nsw"))
    iv.add_incoming(step, b.block)
    if exit_bb is None:
        exit_bb = ctx.fn.append_basic_block(f"{name}.exit")
    b.cbranch(b.icmp_signed("<", step, stop), header, exit_bb)
    b.position_at_end(exit_bb)


def emit_serial(ctx: FnContext, loop: For, emit: EmitStmt) -> None:
    def body(iv: ir.Value) -> None:
        with ctx.bind(loop.var, iv):
            emit(ctx, loop.body)

    zero, stop = ir.Constant(I64, 0), ir.Constant(I64, loop.extent)
    counted_loop(ctx, loop.var.name, zero, stop, body, may_be_empty=False)


def emit_unrolled(ctx: FnContext, loop: For, emit: EmitStmt) -> None:
    """The body `extent` times with the variable a constant (SROA can then keep
    small scratch arrays indexed by it in registers)."""
    if loop.extent > MAX_UNROLL:
        emit_serial(ctx, loop, emit)
        return
    for i in range(loop.extent):
        with ctx.bind(loop.var, ir.Constant(I64, i)):
            emit(ctx, loop.body)


def vector_chunks(loop: For, width: int) -> list[VecLoop]:
    """The loop as consecutive chunks of at most `width` lanes.

    Vectors wider than a register are fine inside a basic block, but LLVM passes
    a non-power-of-two vector from block to block (an accumulator phi) lane by
    lane; register-sized chunks keep accumulators in whole registers. Running
    the chunks one after the other is legal whenever running all lanes at once is.
    """
    starts = range(0, loop.extent, width)
    return [VecLoop(loop.var, min(width, loop.extent - s), s) for s in starts]


def emit_vectorized(ctx: FnContext, loop: For, emit: EmitStmt) -> None:
    """SIMD when the body allows it; otherwise lane by lane (or a serial loop when the
    body holds loops, which would make per-lane copies large)."""
    width = ctx.shared.vector_bytes // 4
    if ctx.vec is None and can_vectorize(loop.body, loop.var):
        if loop.extent > MAX_VECTOR_CHUNKS * width:  # bound the code size
            emit(ctx, strip_mine(loop, width))
            return
        for chunk in vector_chunks(loop, width):
            with ctx.vectorized(chunk):
                emit(ctx, loop.body)
    elif contains_loop(loop.body):
        emit_serial(ctx, loop, emit)
    else:
        for i in range(loop.extent):
            with ctx.bind(loop.var, ir.Constant(I64, i)):
                emit(ctx, loop.body)
