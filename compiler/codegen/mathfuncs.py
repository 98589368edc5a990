"""Math calls: LLVM intrinsics where they exist, libm otherwise (tanh, erf, the
trigonometric and hyperbolic functions; vectors lane by lane); float32 vectors of
exp, tanh, erf and sigmoid use the polynomials of `vecmath`."""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from compiler.codegen import vecmath
from compiler.codegen.context import CodegenError, FnContext
from compiler.codegen.intrinsics import (
    F32,
    I32,
    broadcast,
    declare,
    element_type,
    intrinsic,
    lanes_of,
)
from compiler.te.kinds import MathFunc

FAST = ("contract",)

_INTRINSICS = {
    MathFunc.EXP: "llvm.exp",
    MathFunc.LOG: "llvm.log",
    MathFunc.SQRT: "llvm.sqrt",
    MathFunc.ABS: "llvm.fabs",
    MathFunc.FLOOR: "llvm.floor",
    MathFunc.CEIL: "llvm.ceil",
    MathFunc.POW: "llvm.pow",
}
# float32 vectors: polynomials in SIMD registers instead of libm lane by lane
_FAST_VECTOR: dict[MathFunc, Callable[[ir.IRBuilder, ir.Value], ir.Value]] = {
    MathFunc.EXP: vecmath.fast_exp,
    MathFunc.TANH: vecmath.fast_tanh,
    MathFunc.ERF: vecmath.fast_erf,
    MathFunc.SIGMOID: vecmath.fast_sigmoid,
}
# (float32 name, float64 name) in libm
_LIBM = {MathFunc.TANH: ("tanhf", "tanh"), MathFunc.ERF: ("erff", "erf")}
_LIBM.update({f: (f"{f.value}f", f.value) for f in (
    MathFunc.SIN, MathFunc.COS, MathFunc.TAN, MathFunc.ASIN, MathFunc.ACOS, MathFunc.ATAN,
    MathFunc.SINH, MathFunc.COSH, MathFunc.ASINH, MathFunc.ACOSH, MathFunc.ATANH,
)})  # fmt: skip


def emit_call(ctx: FnContext, func: MathFunc, args: list[ir.Value]) -> ir.Value:
    """`func(*args)` on float scalars or vectors."""
    b = ctx.builder
    if len(args) == 2:
        args = list(broadcast(b, args[0], args[1]))
    x = args[0]
    if lanes_of(x) and element_type(x.type) == F32 and func in _FAST_VECTOR:
        return _FAST_VECTOR[func](b, x)
    match func:
        case MathFunc.SIGMOID:  # 1 / (1 + exp(-x))
            one = _float_like(x, 1.0)
            e = _intrinsic_call(ctx, "llvm.exp", [b.fneg(x, flags=FAST)])
            return b.fdiv(one, b.fadd(one, e, flags=FAST), flags=FAST)
        case MathFunc.RSQRT:
            return b.fdiv(_float_like(x, 1.0), _intrinsic_call(ctx, "llvm.sqrt", [x]), flags=FAST)
    if func in _LIBM:
        return _libm_call(ctx, func, x)
    name = _INTRINSICS.get(func)
    if name is None:
        raise CodegenError(f"no code generation for math function {func.value}")
    return _intrinsic_call(ctx, name, args)


def _intrinsic_call(ctx: FnContext, name: str, args: list[ir.Value]) -> ir.Value:
    t = args[0].type
    fn = intrinsic(ctx.module, name, t, [t] * len(args), [t])
    return ctx.builder.call(fn, args, fastmath=FAST)


def _libm_call(ctx: FnContext, func: MathFunc, x: ir.Value) -> ir.Value:
    """A libm function; vectors call it lane by lane."""
    b = ctx.builder
    elem = element_type(x.type)
    fn = declare(ctx.module, _LIBM[func][0 if elem == F32 else 1], elem, [elem])
    lanes = lanes_of(x)
    if not lanes:
        return b.call(fn, [x])
    out = ir.Constant(x.type, ir.Undefined)
    for lane in range(lanes):
        idx = ir.Constant(I32, lane)
        out = b.insert_element(out, b.call(fn, [b.extract_element(x, idx)]), idx)
    return out


def _float_like(v: ir.Value, c: float) -> ir.Constant:
    lanes = lanes_of(v)
    elem = element_type(v.type)
    return ir.Constant(v.type, [ir.Constant(elem, c)] * lanes) if lanes else ir.Constant(elem, c)
