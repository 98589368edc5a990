"""Parallel loops through the runtime's thread pool: the loop is outlined and run by
`st_parallel_for` (compiler/runtime/pool.c; docs/threads.md).

For `for i in 0..N parallel: body` in function `f` this emits

    f_par<K>(ptr closure, i64 begin, i64 end)   ; one chunk, on whichever thread took it
        unpack buffers and variables
        call f_par<K>_body(noalias buffers..., variables..., begin, end)
    f_par<K>_body(...)                ; the loop over the chunk; noalias parameters
                                      ; survive inlining as alias scopes
    f: closure = {buffers, variables}; st_parallel_for(f_par<K>, closure, N)

The pool cuts [0, N) into contiguous chunks and runs each once, on the calling
thread or a worker; every iteration runs the same code whichever thread runs it,
so results do not depend on the thread count. Both outlined functions are
internal. Scratch buffers allocated inside the body are allocas of the outlined
function, so every thread has its own.
"""

from __future__ import annotations

from llvmlite import ir

from compiler.codegen.context import FnContext
from compiler.codegen.intrinsics import I32, I64, ITEMSIZE, PTR, VOID, declare, stack_slot
from compiler.codegen.loops import EmitStmt, counted_loop, emit_serial
from compiler.lower.loop_ir import Allocate, Buffer, For, IfThenElse, Load, Seq, Stmt, Store
from compiler.te.expr import Expr, Var
from compiler.te.traverse import walk

POOL_ENTRY = "st_parallel_for"  # void (void (*)(ptr, i64, i64), ptr, i64): compiler/runtime/pool.c


def emit_parallel(ctx: FnContext, loop: For, emit: EmitStmt) -> None:
    """Run the iterations of `loop` on the thread pool (serially when already inside a
    parallel loop)."""
    if ctx.in_parallel:
        emit_serial(ctx, loop, emit)
        return
    used_vars, used_bufs = stmt_uses(loop.body)
    bufs = [buf for buf in used_bufs if buf in ctx.buffers]
    live = [v for v in used_vars if v in ctx.env and v != loop.var]
    consts = {v: ctx.env[v] for v in live if isinstance(ctx.env[v], ir.Constant)}
    scalars = [v for v in live if v not in consts]
    name = f"{ctx.fn.name}_par{ctx.shared.next_outlined()}"
    body_fn = _body_function(ctx, name, loop, bufs, scalars, consts, emit)
    chunk_fn = _chunk_function(ctx, name, body_fn, len(bufs), len(scalars))
    closure = _pack(ctx, [ctx.buffers[buf] for buf in bufs] + [ctx.env[v] for v in scalars])
    pool_for = declare(ctx.module, POOL_ENTRY, VOID, [PTR, PTR, I64])
    ctx.builder.call(pool_for, [chunk_fn, closure, ir.Constant(I64, loop.extent)])


def _closure_type(n_ptrs: int, n_ints: int) -> ir.LiteralStructType:
    return ir.LiteralStructType([PTR] * n_ptrs + [I64] * n_ints + [I64])  # +1: never empty


def _pack(ctx: FnContext, values: list[ir.Value]) -> ir.Value:
    n_ptrs = sum(1 for v in values if isinstance(v.type, ir.PointerType))
    ty = _closure_type(n_ptrs, len(values) - n_ptrs)
    closure = stack_slot(ctx.entry, ty, "closure")
    for i, value in enumerate(values):
        slot = ctx.builder.gep(closure, [_i32(0), _i32(i)], inbounds=True, source_etype=ty)
        ctx.builder.store(value, slot)
    return closure


def _chunk_function(
    ctx: FnContext, name: str, body_fn: ir.Function, n_ptrs: int, n_ints: int
) -> ir.Function:
    """`void name(ptr closure, i64 begin, i64 end)`: unpack, run the body on the chunk."""
    fn = ir.Function(ctx.module, ir.FunctionType(VOID, [PTR, I64, I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ty = _closure_type(n_ptrs, n_ints)
    args = []
    for i in range(n_ptrs + n_ints):
        slot = b.gep(fn.args[0], [_i32(0), _i32(i)], inbounds=True, source_etype=ty)
        args.append(b.load(slot, typ=PTR if i < n_ptrs else I64))
    b.call(body_fn, [*args, fn.args[1], fn.args[2]])
    b.ret_void()
    return fn


def _body_function(
    ctx: FnContext,
    name: str,
    loop: For,
    bufs: list[Buffer],
    scalars: list[Var],
    consts: dict[Var, ir.Value],
    emit: EmitStmt,
) -> ir.Function:
    """`void name_body(buffers..., variables..., start, stop)`: the loop over one chunk."""
    fnty = ir.FunctionType(VOID, [PTR] * len(bufs) + [I64] * (len(scalars) + 2))
    fn = ir.Function(ctx.module, fnty, f"{name}_body")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    sub = FnContext.start(ctx.shared, fn, in_parallel=True)
    for arg, buf in zip(fn.args, bufs):
        arg.name = buf.name
        arg.add_attribute("noalias")
        arg.attributes.align = 64
        arg.attributes.dereferenceable = buf.size * ITEMSIZE[buf.dtype]
        sub.buffers[buf] = arg
    for arg, var in zip(fn.args[len(bufs) :], scalars):
        arg.name = var.name
        sub.env[var] = arg
    sub.env.update(consts)
    start, stop = fn.args[-2], fn.args[-1]

    def body(iv: ir.Value) -> None:
        with sub.bind(loop.var, iv):
            emit(sub, loop.body)

    counted_loop(sub, loop.var.name, start, stop, body, may_be_empty=True)
    sub.finish()
    return fn


def _i32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def stmt_uses(s: Stmt) -> tuple[list[Var], list[Buffer]]:
    """Variables and buffers a statement mentions, in first-use order (deterministic)."""
    vars_: dict[Var, None] = {}
    bufs: dict[Buffer, None] = {}

    def expr(e: Expr) -> None:
        for n in walk(e):
            if isinstance(n, Var):
                vars_.setdefault(n)
            elif isinstance(n, Load):
                bufs.setdefault(n.buffer)

    def stmt(x: Stmt) -> None:
        match x:
            case Seq(stmts):
                for y in stmts:
                    stmt(y)
            case For(var, _, _, body):
                vars_.setdefault(var)
                stmt(body)
            case Store(buf, index, value):
                bufs.setdefault(buf)
                expr(index)
                expr(value)
            case IfThenElse(cond, then_case, else_case):
                expr(cond)
                stmt(then_case)
                if else_case is not None:
                    stmt(else_case)
            case Allocate(buf, body):
                bufs.setdefault(buf)
                stmt(body)

    stmt(s)
    return list(vars_), list(bufs)
