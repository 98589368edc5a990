"""Comparisons, logic, select and casts: element-wise ops on any dtype.

ONNX's Equal, Less, LessOrEqual, Greater, GreaterOrEqual (bool results), And, Or,
Xor, Not (bool operands), Where (a bool condition choosing between two branches of
any one dtype) and Cast. Each is one stage tagged "injective,elemwise", or
"injective,broadcast" when an operand is broadcast (numpy rules, any number of
operands), so it fuses into its neighbours' tasks like the float ops do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import as_operand, broadcast_read, broadcast_shapes, check_tensor
from compiler.te import Expr, Tensor
from compiler.te.kinds import DTYPES

Operand = Tensor | float | int  # Python numbers become constants of the tensors' dtype
Reader = Callable[[tuple[Expr, ...]], Expr]


def broadcast_compute(
    op: str,
    operands: Sequence[Operand],
    fn: Callable[..., Expr],
    dtypes: Sequence[str | None],
) -> Tensor:
    """One stage computing fn(*values) over the numpy broadcast of the tensor operands.

    `dtypes[k]` is the dtype a Python-number operand k becomes (None: that of the
    tensors it is compared or combined with, the first tensor's)."""
    tensors = [v for v in operands if isinstance(v, Tensor)]
    if not tensors:
        raise OpError(f"{op}: at least one operand must be a Tensor, got {list(operands)!r}")
    shape = tensors[0].shape
    for t in tensors[1:]:
        shape = broadcast_shapes(op, shape, t.shape)

    def reader(v: Operand, dtype: str | None) -> Reader:
        if isinstance(v, Tensor):
            return lambda i: broadcast_read(v, i, shape)
        constant = as_operand(op, v, dtype or tensors[0].dtype)
        return lambda i: constant

    readers = [reader(v, d) for v, d in zip(operands, dtypes)]
    tag = tags.BROADCAST if any(t.shape != shape for t in tensors) else tags.ELEMWISE
    return te.compute(shape, lambda *i: fn(*(r(i) for r in readers)), name=op, tag=tag)


def _same_dtype(op: str, operands: Sequence[Operand]) -> str:
    dtypes = {v.dtype for v in operands if isinstance(v, Tensor)}
    if len(dtypes) > 1:
        raise OpError(f"{op}: operands have different dtypes {sorted(dtypes)}")
    return dtypes.pop() if dtypes else "float32"


def _compare(op: str, a: Operand, b: Operand, fn: Callable[[Expr, Expr], Expr]) -> Tensor:
    _same_dtype(op, (a, b))
    return broadcast_compute(op, (a, b), fn, (None, None))


def equal(a: Operand, b: Operand) -> Tensor:
    """a == b (bool) with broadcasting. Example: `mask = equal(ids, 0)`."""
    return _compare("equal", a, b, te.equal)


def not_equal(a: Operand, b: Operand) -> Tensor:
    """a != b (bool) with broadcasting. Example: `keep = not_equal(ids, 0)`."""
    return _compare("not_equal", a, b, te.not_equal)


def less(a: Operand, b: Operand) -> Tensor:
    """a < b (bool) with broadcasting. Example: `neg = less(x, 0.0)`."""
    return _compare("less", a, b, lambda x, y: x < y)


def less_equal(a: Operand, b: Operand) -> Tensor:
    """a <= b (bool) with broadcasting. Example: `m = less_equal(x, y)`."""
    return _compare("less_equal", a, b, lambda x, y: x <= y)


def greater(a: Operand, b: Operand) -> Tensor:
    """a > b (bool) with broadcasting. Example: `pos = greater(x, 0.0)`."""
    return _compare("greater", a, b, lambda x, y: x > y)


def greater_equal(a: Operand, b: Operand) -> Tensor:
    """a >= b (bool) with broadcasting. Example: `m = greater_equal(x, y)`."""
    return _compare("greater_equal", a, b, lambda x, y: x >= y)


def _logical(op: str, a: Operand, b: Operand, fn: Callable[[Expr, Expr], Expr]) -> Tensor:
    for arg, v in (("a", a), ("b", b)):
        if isinstance(v, Tensor) and v.dtype != "bool":
            raise OpError(f"{op}: {arg} must be bool, got {v.dtype}")
    return broadcast_compute(op, (a, b), fn, ("bool", "bool"))


def logical_and(a: Operand, b: Operand) -> Tensor:
    """a and b on bool tensors. Example: `both = logical_and(m1, m2)`."""
    return _logical("logical_and", a, b, te.logical_and)


def logical_or(a: Operand, b: Operand) -> Tensor:
    """a or b on bool tensors. Example: `any = logical_or(m1, m2)`."""
    return _logical("logical_or", a, b, te.logical_or)


def logical_xor(a: Operand, b: Operand) -> Tensor:
    """a != b on bool tensors. Example: `one = logical_xor(m1, m2)`."""
    return _logical("logical_xor", a, b, te.not_equal)


def logical_not(x: Tensor) -> Tensor:
    """not x on a bool tensor. Example: `masked = logical_not(keep)`."""
    check_tensor("logical_not", "x", x)
    if x.dtype != "bool":
        raise OpError(f"logical_not: x must be bool, got {x.dtype}")
    return te.compute(x.shape, lambda *i: ~x[i], name="logical_not", tag=tags.ELEMWISE)


def where(cond: Tensor, a: Operand, b: Operand, dtype: str | None = None) -> Tensor:
    """a where cond else b, with broadcasting (ONNX Where); `dtype` is the result's when
    both branches are Python numbers. Example: `y = where(mask, x, -1e9)`."""
    check_tensor("where", "cond", cond)
    if cond.dtype != "bool":
        raise OpError(f"where: cond must be bool, got {cond.dtype}")
    branches = [v for v in (a, b) if isinstance(v, Tensor)]
    out = _same_dtype("where", branches) if branches else dtype or "float32"
    return broadcast_compute("where", (cond, a, b), te.select, ("bool", out, out))


def cast(x: Tensor, dtype: str) -> Tensor:
    """x converted to `dtype` like numpy's astype (float to int truncates; to bool: != 0).

    Example: `mask = cast(ids, "float32")`."""
    check_tensor("cast", "x", x)
    if dtype not in DTYPES:
        raise OpError(f"cast: unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if dtype == "bool":
        zero = te.const(0, x.dtype)
        return te.compute(
            x.shape, lambda *i: te.not_equal(x[i], zero), name="cast", tag=tags.ELEMWISE
        )
    return te.compute(x.shape, lambda *i: te.cast(dtype, x[i]), name="cast", tag=tags.ELEMWISE)
