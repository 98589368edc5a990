"""Rounding and integer arithmetic: floor, ceil, round (half to even), sign, mod, and the
truncating division and float power of integer tensors (ONNX Div and Pow on ints).

Element-wise stages like the others ("injective,elemwise" / "injective,broadcast"),
so they fuse into their neighbours' tasks. The te language has floor division and
floor modulo on integers and floor / ceil on floats; C's truncating forms are
built from them with a select on the signs.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.logic import Operand, broadcast_compute
from compiler.ops.shapes import FLOAT_DTYPES, check_float, check_tensor
from compiler.te import Expr, Tensor
from compiler.te.kinds import INT_DTYPES


def _unary(op: str, x: Tensor, fn: Callable[[Expr], Expr]) -> Tensor:
    check_tensor(op, "x", x)
    return te.compute(x.shape, lambda *i: fn(x[i]), name=op, tag=tags.ELEMWISE)


def floor(x: Tensor) -> Tensor:
    """The largest integer <= x, on floats. Example: `y = floor(x)`."""
    check_float("floor", "x", _check(x, "floor"))
    return _unary("floor", x, te.floor)


def ceil(x: Tensor) -> Tensor:
    """The smallest integer >= x, on floats. Example: `y = ceil(x)`."""
    check_float("ceil", "x", _check(x, "ceil"))
    return _unary("ceil", x, te.ceil)


def round_half_even(x: Tensor) -> Tensor:
    """x rounded to the nearest integer, halves to the even one (ONNX Round, numpy.round).

    Example: `y = round_half_even(x)` maps 2.5 to 2.0 and 3.5 to 4.0."""
    check_float("round", "x", _check(x, "round"))
    return _unary("round", x, half_even)


def half_even(v: Expr) -> Expr:
    """A float expression rounded to the nearest integer, halves to the even one."""
    low = te.floor(v)
    frac = v - low
    odd = te.not_equal(low - 2.0 * te.floor(low * 0.5), 0.0)
    up = te.logical_or(frac > 0.5, te.logical_and(te.equal(frac, 0.5), odd))
    return te.select(up, low + 1.0, low)


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of x (any numeric dtype). Example: `s = sign(x)`."""
    _check(x, "sign")
    one, zero = te.const(1, x.dtype), te.const(0, x.dtype)
    return _unary("sign", x, lambda v: te.select(v > zero, one, te.select(v < zero, -one, zero)))


def _check(x: Tensor, op: str) -> Tensor:
    return check_tensor(op, "x", x)


def nonzero(y: Expr) -> Expr:
    """An integer divisor with 0 replaced by 1: a division by zero traps on x86 (and is
    undefined in LLVM), whatever the data; ONNX leaves its result undefined."""
    return y + te.cast(y.dtype, te.equal(y, 0))


def trunc_div(x: Expr, y: Expr) -> Expr:
    """Integer x / y rounded toward zero (C, numpy's int(x / y)), from floor division; 0
    where y is 0 (as numpy). Arithmetic on the conditions, no select: a select's branches
    would read their operands under masks, and a masked-off divisor is 0."""
    d = nonzero(y)
    q = x // d
    inexact = te.not_equal(x - q * d, 0)
    fix = te.cast(x.dtype, te.logical_and(inexact, te.not_equal(x < 0, d < 0)))
    return (q + fix) * te.cast(x.dtype, te.not_equal(y, 0))


def trunc_mod(x: Expr, y: Expr) -> Expr:
    """x - y * trunc(x / y): the remainder with the sign of x (C's fmod; x where y is
    infinite, NaN where y is 0 or x infinite)."""
    if x.dtype not in FLOAT_DTYPES:
        return x - y * trunc_div(x, y)
    quotient = x / y
    whole = te.select(quotient < 0.0, te.ceil(quotient), te.floor(quotient))
    return te.select(te.equal(te.fabs(y), float("inf")), x, x - y * whole)


def floor_mod(x: Expr, y: Expr) -> Expr:
    """The remainder with the sign of y (Python's %, numpy.mod): C's fmod moved by y where
    the signs differ (numpy's npy_divmod)."""
    if x.dtype not in FLOAT_DTYPES:
        return x % nonzero(y)
    rem = trunc_mod(x, y)
    moved = te.select(te.not_equal(y < 0.0, rem < 0.0), rem + y, rem)
    return te.select(te.not_equal(rem, 0.0), moved, rem)


def mod(a: Operand, b: Operand, fmod: bool = False) -> Tensor:
    """ONNX Mod: the remainder with the sign of b (fmod=False, Python's %) or of a
    (fmod=True, C's fmod). Example: `r = mod(x, 3)`."""
    dtypes = {v.dtype for v in (a, b) if isinstance(v, Tensor)}
    if len(dtypes) > 1:
        raise OpError(f"mod: operands have different dtypes {sorted(dtypes)}")
    fn = trunc_mod if fmod else floor_mod
    return broadcast_compute("mod", (a, b), fn, (None, None))


def int_power(a: Tensor | float, b: Tensor | float) -> Tensor:
    """a ** b when an operand is an integer tensor: computed in float64 (float32 when a is
    float32), the result of a's dtype (ONNX Pow; ints truncated like numpy's astype)."""
    first = a if isinstance(a, Tensor) else b
    assert isinstance(first, Tensor)
    out = a.dtype if isinstance(a, Tensor) else first.dtype
    if out not in FLOAT_DTYPES + INT_DTYPES:
        raise OpError(f"power: a must be a number tensor, got {out}")
    work = out if out in FLOAT_DTYPES else "float64"

    def fn(x: Expr, y: Expr) -> Expr:
        return te.cast(out, te.power(te.cast(work, x), te.cast(work, y)))

    dtypes = [None if isinstance(v, Tensor) else work for v in (a, b)]
    return broadcast_compute("power", (a, b), fn, dtypes)
