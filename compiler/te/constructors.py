"""Named constructors of the tensor-expression language: comparisons and logic,
`select`, `cast`, the math functions, reduce axes and reductions (`sum`, `max`, `min`).

The Python operators (`a + b`, `a < b`) and `const` are in `compiler.te.expr`.
"""

from __future__ import annotations

from compiler.te.expr import (
    BinOp,
    Call,
    Cast,
    Expr,
    ExprLike,
    IterVar,
    Reduce,
    Select,
    Var,
    binop,
    cmp,
    coerce_pair,
    const,
)
from compiler.te.kinds import (
    DTYPES,
    FLOAT_DTYPES,
    BinOpKind,
    CmpKind,
    IterKind,
    MathFunc,
    ReduceKind,
)


def equal(a: ExprLike, b: ExprLike) -> Expr:
    return cmp(CmpKind.EQ, a, b)


def not_equal(a: ExprLike, b: ExprLike) -> Expr:
    return cmp(CmpKind.NE, a, b)


def _check_conds(name: str, conds: tuple[Expr, ...]) -> None:
    if not conds:
        raise TypeError(f"{name}() needs at least one condition")
    for c in conds:
        if c.dtype != "bool":
            raise TypeError(f"{name}() takes bool conditions, got {c!r} ({c.dtype})")


def logical_and(*conds: Expr) -> Expr:
    _check_conds("logical_and", conds)
    out = conds[0]
    for c in conds[1:]:
        out = BinOp(BinOpKind.AND, out, c)
    return out


def logical_or(*conds: Expr) -> Expr:
    _check_conds("logical_or", conds)
    out = conds[0]
    for c in conds[1:]:
        out = BinOp(BinOpKind.OR, out, c)
    return out


def min_expr(a: ExprLike, b: ExprLike) -> Expr:
    return binop(BinOpKind.MIN, a, b)


def max_expr(a: ExprLike, b: ExprLike) -> Expr:
    return binop(BinOpKind.MAX, a, b)


def select(cond: Expr, true_value: ExprLike, false_value: ExprLike) -> Expr:
    """`cond ? t : f` (TVM's if_then_else); the padding idiom."""
    if cond.dtype != "bool":
        raise TypeError(f"select condition must be bool, got {cond.dtype}")
    t, f = coerce_pair(true_value, false_value)
    return Select(cond, t, f)


if_then_else = select


def cast(dtype: str, value: ExprLike) -> Expr:
    if dtype not in DTYPES:
        raise TypeError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    v = const(value)
    return v if v.dtype == dtype else Cast(dtype, v)


def _float_arg(name: str, x: ExprLike) -> Expr:
    e = const(x, "float32") if not isinstance(x, Expr) else x
    if e.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}() needs a float argument, got {e.dtype}")
    return e


def _math(func: MathFunc):
    def build(x: ExprLike) -> Expr:
        return Call(func, (_float_arg(func.value, x),))

    build.__name__ = func.value
    build.__doc__ = f"Elementwise {func.value}(x) on a float expression."
    return build


exp = _math(MathFunc.EXP)
log = _math(MathFunc.LOG)
sqrt = _math(MathFunc.SQRT)
rsqrt = _math(MathFunc.RSQRT)
tanh = _math(MathFunc.TANH)
erf = _math(MathFunc.ERF)
sigmoid = _math(MathFunc.SIGMOID)
fabs = _math(MathFunc.ABS)
floor = _math(MathFunc.FLOOR)
ceil = _math(MathFunc.CEIL)
sin = _math(MathFunc.SIN)
cos = _math(MathFunc.COS)
tan = _math(MathFunc.TAN)
asin = _math(MathFunc.ASIN)
acos = _math(MathFunc.ACOS)
atan = _math(MathFunc.ATAN)
sinh = _math(MathFunc.SINH)
cosh = _math(MathFunc.COSH)
asinh = _math(MathFunc.ASINH)
acosh = _math(MathFunc.ACOSH)
atanh = _math(MathFunc.ATANH)


def power(x: ExprLike, y: ExprLike) -> Expr:
    a, b = coerce_pair(x, y)
    return Call(MathFunc.POW, (_float_arg("pow", a), _float_arg("pow", b)))


_AXIS_COUNTER = [0]


def reduce_axis(extent: int, name: str | None = None) -> IterVar:
    """A reduction axis over [0, extent)."""
    if not isinstance(extent, int) or extent <= 0:
        raise ValueError(f"reduce_axis extent must be a positive int, got {extent!r}")
    if name is None:
        _AXIS_COUNTER[0] += 1
        name = f"r{_AXIS_COUNTER[0]}"
    return IterVar(Var(name), extent, IterKind.REDUCE)


def _reducer(kind: ReduceKind):
    def build(source: ExprLike, axis: IterVar | list[IterVar] | tuple[IterVar, ...]) -> Expr:
        axes = (axis,) if isinstance(axis, IterVar) else tuple(axis)
        if not axes or any(a.kind is not IterKind.REDUCE for a in axes):
            raise ValueError(f"{kind.value}() needs reduce axes made with reduce_axis()")
        return Reduce(kind, const(source), axes)

    build.__name__ = kind.value
    build.__doc__ = f"{kind.value} of `source` over the reduce axes `axis`."
    return build


sum = _reducer(ReduceKind.SUM)
max = _reducer(ReduceKind.MAX)
min = _reducer(ReduceKind.MIN)
