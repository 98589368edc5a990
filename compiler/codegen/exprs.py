"""Expressions to LLVM values, scalar or SIMD.

One function serves scalar and vector code: inside a vectorized loop an
expression that depends on the loop variable becomes an `<L x T>` value and
everything else stays scalar (splatted where it meets a vector). Integers are
i64, bools i1; float arithmetic carries only the `contract` fast-math flag, so
`a*b+c` may become an FMA but nothing is reassociated.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from llvmlite import ir

from compiler.codegen import mathfuncs, memory
from compiler.codegen.context import CodegenError, FnContext
from compiler.codegen.intrinsics import (
    I1,
    I64,
    broadcast,
    intrinsic,
    lanes_of,
    ramp,
    to_lanes,
    value_type,
    with_lanes,
)
from compiler.lower.loop_ir import Load
from compiler.te.expr import BinOp, Call, Cast, Cmp, Expr, FloatImm, IntImm, Not, Select, Var
from compiler.te.kinds import FLOAT_DTYPES, BinOpKind, CmpKind
from compiler.te.traverse import walk

FAST = ("contract",)  # the only fast-math flag: fusion into FMA, no reassociation

_FOLD_INT: dict[BinOpKind, Callable[[int, int], int]] = {
    BinOpKind.ADD: operator.add,
    BinOpKind.SUB: operator.sub,
    BinOpKind.MUL: operator.mul,
    BinOpKind.FLOORDIV: operator.floordiv,  # Python's // and % are floor operations too
    BinOpKind.FLOORMOD: operator.mod,
    BinOpKind.MIN: min,
    BinOpKind.MAX: max,
}


def emit_expr(ctx: FnContext, e: Expr) -> ir.Value:
    """The value of `e` at the builder's position (a vector if it varies across lanes)."""
    match e:
        case IntImm(value, dtype):
            return ir.Constant(value_type(dtype), value)
        case FloatImm(value, dtype):
            return ir.Constant(value_type(dtype), value)
        case Var():
            return _var(ctx, e)
        case Load():
            return memory.emit_load(ctx, e)
        case BinOp(op, a, b):
            return _binop(ctx, op, a, b)
        case Cmp(op, a, b):
            return _cmp(ctx, op, a, b)
        case Not(a):
            return ctx.builder.not_(emit_expr(ctx, a))
        case Select():
            return _select(ctx, e)
        case Cast(dtype, value):
            return convert(ctx.builder, emit_expr(ctx, value), value.dtype, dtype)
        case Call(func, args):
            values = [emit_expr(ctx, a) for a in args]
            return mathfuncs.emit_call(ctx, func, values)
    raise CodegenError(f"cannot generate code for {type(e).__name__} {e!r}")


def _var(ctx: FnContext, v: Var) -> ir.Value:
    if ctx.vec is not None and v == ctx.vec.var:
        return ramp(ctx.vec.lanes, ctx.vec.offset)
    value = ctx.env.get(v)
    if value is None:
        raise CodegenError(f"variable {v.name!r} is used outside the loop that defines it")
    return value


# ------------------------------------------------------------------ arithmetic


def _binop(ctx: FnContext, op: BinOpKind, a: Expr, b: Expr) -> ir.Value:
    x, y = emit_expr(ctx, a), emit_expr(ctx, b)
    if a.dtype in FLOAT_DTYPES:
        return float_binop(ctx.builder, op, *broadcast(ctx.builder, x, y))
    if a.dtype == "bool":
        folded = _fold_bool(op, x, y)
        if folded is not None:
            return folded
        x, y = broadcast(ctx.builder, x, y)
        if op is BinOpKind.AND:
            return ctx.builder.and_(x, y)
        if op is BinOpKind.OR:
            return ctx.builder.or_(x, y)
        raise CodegenError(f"'{op.value}' is not defined on bool")
    folded = _fold_int(op, x, y)
    if folded is not None:
        return folded
    x, y = broadcast(ctx.builder, x, y)
    if op in (BinOpKind.FLOORDIV, BinOpKind.FLOORMOD):
        divisor = b.value if isinstance(b, IntImm) else None
        return _floor_divmod(ctx.builder, op, x, y, divisor, is_nonneg(a))
    return _int_binop(ctx, op, x, y)


def float_binop(b: ir.IRBuilder, op: BinOpKind, x: ir.Value, y: ir.Value) -> ir.Value:
    match op:
        case BinOpKind.ADD:
            return b.fadd(x, y, flags=FAST)
        case BinOpKind.SUB:
            return b.fsub(x, y, flags=FAST)
        case BinOpKind.MUL:
            return b.fmul(x, y, flags=FAST)
        case BinOpKind.DIV:
            return b.fdiv(x, y, flags=FAST)
        case BinOpKind.MIN:  # x86 minps semantics: one instruction, no NaN fix-up
            return b.select(b.fcmp_ordered("<", x, y), x, y)
        case BinOpKind.MAX:
            return b.select(b.fcmp_ordered(">", x, y), x, y)
    raise CodegenError(f"'{op.value}' is not defined on floats")


def _int_binop(ctx: FnContext, op: BinOpKind, x: ir.Value, y: ir.Value) -> ir.Value:
    b = ctx.builder
    match op:
        case BinOpKind.ADD:
            return b.add(x, y)
        case BinOpKind.SUB:
            return b.sub(x, y)
        case BinOpKind.MUL:
            return b.mul(x, y)
        case BinOpKind.MIN | BinOpKind.MAX:
            name = "llvm.smin" if op is BinOpKind.MIN else "llvm.smax"
            fn = intrinsic(ctx.module, name, x.type, [x.type, x.type], [x.type])
            return b.call(fn, [x, y])
    raise CodegenError(f"'{op.value}' is not defined on integers")


def _fold_int(op: BinOpKind, x: ir.Value, y: ir.Value) -> ir.Value | None:
    """Constant-fold scalar integer arithmetic (unrolled indices) and drop x+0, x*1."""
    if x.type != I64 or y.type != I64:  # scalars only
        return None
    cx = x.constant if isinstance(x, ir.Constant) else None
    cy = y.constant if isinstance(y, ir.Constant) else None
    fold = _FOLD_INT.get(op)
    if cx is not None and cy is not None and fold is not None:
        if op in (BinOpKind.FLOORDIV, BinOpKind.FLOORMOD) and cy == 0:
            return None
        return ir.Constant(I64, _wrap64(fold(cx, cy)))
    if op is BinOpKind.ADD:
        return y if cx == 0 else x if cy == 0 else None
    if op is BinOpKind.SUB:
        return x if cy == 0 else None
    if op is BinOpKind.MUL:
        return y if cx == 1 else x if cy == 1 else None
    return None


def _fold_bool(op: BinOpKind, x: ir.Value, y: ir.Value) -> ir.Value | None:
    """`and`/`or` with a scalar constant operand (an unrolled loop's condition)."""
    for c, other in ((x, y), (y, x)):
        if isinstance(c, ir.Constant) and c.type == I1:
            if op is BinOpKind.AND:
                return other if c.constant else c
            if op is BinOpKind.OR:
                return c if c.constant else other
    return None


def _wrap64(v: int) -> int:
    return (v + (1 << 63)) % (1 << 64) - (1 << 63)


def _floor_divmod(
    b: ir.IRBuilder,
    op: BinOpKind,
    x: ir.Value,
    y: ir.Value,
    divisor: int | None,
    x_nonneg: bool,
) -> ir.Value:
    """Floor division or modulo; cheap forms for positive constant divisors."""
    div = op is BinOpKind.FLOORDIV
    if divisor is not None and divisor > 0 and divisor & (divisor - 1) == 0:
        # a power of two: shift and mask are floor operations for any sign
        if div:
            return b.ashr(x, _like(y, divisor.bit_length() - 1))
        return b.and_(x, _like(y, divisor - 1))
    if divisor is not None and divisor > 0 and x_nonneg:
        return b.udiv(x, y) if div else b.urem(x, y)
    q, r = b.sdiv(x, y), b.srem(x, y)
    zero = _like(y, 0)
    # truncated results are one off when the remainder is non-zero and its sign differs from y's
    if divisor is not None and divisor > 0:
        fix = b.icmp_signed("<", r, zero)
    else:
        signs_differ = b.icmp_signed("<", b.xor(r, y), zero)
        fix = b.and_(b.icmp_signed("!=", r, zero), signs_differ)
    if div:
        return b.sub(q, b.zext(fix, q.type))
    return b.add(r, b.select(fix, y, zero))


def _like(v: ir.Value, c: int) -> ir.Constant:
    """The integer constant `c` with `v`'s type (splatted for vectors)."""
    lanes = lanes_of(v)
    elem = v.type.element if lanes else v.type
    return ir.Constant(v.type, [ir.Constant(elem, c)] * lanes) if lanes else ir.Constant(elem, c)


def is_nonneg(e: Expr) -> bool:
    """Whether integer `e` is provably >= 0 (loop variables start at 0)."""
    match e:
        case Var():
            return True
        case IntImm(value, _):
            return value >= 0
        case BinOp(BinOpKind.FLOORMOD, _, IntImm(value, _)):
            return value > 0
        case BinOp(BinOpKind.ADD | BinOpKind.MUL | BinOpKind.FLOORDIV | BinOpKind.MIN, a, b):
            return is_nonneg(a) and is_nonneg(b)
        case BinOp(BinOpKind.MAX, a, b):
            return is_nonneg(a) or is_nonneg(b)
        case Cast(dtype, a) if dtype in ("int32", "int64") and a.dtype in ("int32", "int64"):
            return is_nonneg(a)
        case Select(_, t, f):
            return is_nonneg(t) and is_nonneg(f)
    return False


# ------------------------------------------------------------------ compare, select, cast

_CMP = {
    CmpKind.LT: "<",
    CmpKind.LE: "<=",
    CmpKind.GT: ">",
    CmpKind.GE: ">=",
    CmpKind.EQ: "==",
    CmpKind.NE: "!=",
}


_COMPARE: dict[CmpKind, Callable[[int, int], bool]] = {
    CmpKind.LT: operator.lt,
    CmpKind.LE: operator.le,
    CmpKind.GT: operator.gt,
    CmpKind.GE: operator.ge,
    CmpKind.EQ: operator.eq,
    CmpKind.NE: operator.ne,
}


def _cmp(ctx: FnContext, op: CmpKind, a: Expr, b: Expr) -> ir.Value:
    bld = ctx.builder
    x, y = broadcast(bld, emit_expr(ctx, a), emit_expr(ctx, b))
    if a.dtype in FLOAT_DTYPES:
        if op is CmpKind.NE:  # true for NaN, like numpy
            return bld.fcmp_unordered("!=", x, y)
        return bld.fcmp_ordered(_CMP[op], x, y)
    if a.dtype == "bool":
        return bld.icmp_unsigned(_CMP[op], x, y)
    if isinstance(x, ir.Constant) and isinstance(y, ir.Constant) and not lanes_of(x):
        return ir.Constant(I1, _COMPARE[op](x.constant, y.constant))  # unrolled indices
    return bld.icmp_signed(_CMP[op], x, y)


def _has_load(e: Expr) -> bool:
    return any(isinstance(n, Load) for n in walk(e))


def _select(ctx: FnContext, e: Select) -> ir.Value:
    """`cond ? t : f`; a branch holding a load is only evaluated where selected."""
    cond = emit_expr(ctx, e.cond)
    if isinstance(cond, ir.Constant) and cond.type == I1:  # decided at compile time
        return emit_expr(ctx, e.true_value if cond.constant else e.false_value)
    guarded = _has_load(e.true_value) or _has_load(e.false_value)
    if guarded and lanes_of(cond):
        return _masked_select(ctx, cond, e)
    if guarded:
        return _branch_select(ctx, cond, e)
    t, f = broadcast(ctx.builder, emit_expr(ctx, e.true_value), emit_expr(ctx, e.false_value))
    if lanes_of(cond):
        t, f = to_lanes(ctx.builder, t, lanes_of(cond)), to_lanes(ctx.builder, f, lanes_of(cond))
    return ctx.builder.select(cond, t, f)


def _masked_select(ctx: FnContext, cond: ir.Value, e: Select) -> ir.Value:
    """A vector select: each branch is evaluated with only its own lanes live."""
    b, lanes = ctx.builder, lanes_of(cond)
    not_cond = b.not_(cond)
    if ctx.mask is not None:
        cond_live, not_cond_live = b.and_(ctx.mask, cond), b.and_(ctx.mask, not_cond)
    else:
        cond_live, not_cond_live = cond, not_cond
    with ctx.masked(cond_live):
        t = to_lanes(b, emit_expr(ctx, e.true_value), lanes)
    with ctx.masked(not_cond_live):
        f = to_lanes(b, emit_expr(ctx, e.false_value), lanes)
    return b.select(cond, t, f)


def _branch_select(ctx: FnContext, cond: ir.Value, e: Select) -> ir.Value:
    """A scalar select by branching, so the untaken branch's loads never run."""
    b = ctx.builder
    varies = ctx.depends(e.true_value) or ctx.depends(e.false_value)
    lanes = ctx.vec.lanes if varies and ctx.vec is not None else None
    then_bb = ctx.fn.append_basic_block("sel.then")
    else_bb = ctx.fn.append_basic_block("sel.else")
    merge_bb = ctx.fn.append_basic_block("sel.end")
    b.cbranch(cond, then_bb, else_bb)
    incoming = []
    for block, branch in ((then_bb, e.true_value), (else_bb, e.false_value)):
        b.position_at_end(block)
        incoming.append((to_lanes(b, emit_expr(ctx, branch), lanes), b.block))
        b.branch(merge_bb)
    b.position_at_end(merge_bb)
    phi = b.phi(incoming[0][0].type)
    for value, block in incoming:
        phi.add_incoming(value, block)
    return phi


def convert(b: ir.IRBuilder, v: ir.Value, src: str, dst: str) -> ir.Value:
    """A value of dtype `src` as dtype `dst` (numpy's astype: float->int truncates)."""
    if src == dst:
        return v
    dst_t = with_lanes(value_type(dst), lanes_of(v))
    src_float, dst_float = src in FLOAT_DTYPES, dst in FLOAT_DTYPES
    if src_float and dst_float:
        return b.fpext(v, dst_t) if src == "float32" else b.fptrunc(v, dst_t)
    if dst_float:
        return b.uitofp(v, dst_t) if src == "bool" else b.sitofp(v, dst_t)
    if dst == "bool":
        zero = ir.Constant(v.type, None)
        return b.fcmp_unordered("!=", v, zero) if src_float else b.icmp_unsigned("!=", v, zero)
    if src == "bool":
        return b.zext(v, dst_t)
    wide = b.fptosi(v, dst_t) if src_float else v
    return _wrap(b, wide, *_NARROW[dst]) if dst in _NARROW else wide


# integer dtypes narrower than their i64 register: (bits, signed)
_NARROW = {"int32": (32, True), "int8": (8, True), "uint8": (8, False), "int16": (16, True)}
_NARROW |= {"uint16": (16, False), "uint32": (32, False)}


def _wrap(b: ir.IRBuilder, v: ir.Value, bits: int, signed: bool) -> ir.Value:
    """An i64 holding a `bits`-wide integer value: wrapped like one."""
    if isinstance(v, ir.Constant) and not lanes_of(v):
        low = v.constant % (1 << bits)
        return ir.Constant(I64, low - (1 << bits) if signed and low >> (bits - 1) else low)
    narrow = b.trunc(v, with_lanes(ir.IntType(bits), lanes_of(v)))
    return b.sext(narrow, v.type) if signed else b.zext(narrow, v.type)
