"""Argument checks and shape arithmetic shared by the ops; every failure is an OpError."""

from __future__ import annotations

from collections.abc import Sequence

from compiler import te
from compiler.ops.errors import OpError
from compiler.te import Expr, Tensor

FLOAT_DTYPES = ("float32", "float64")

IntOrPair = int | Sequence[int]


def check_tensor(op: str, arg: str, value: object) -> Tensor:
    """`value` itself, after checking it is a Tensor."""
    if not isinstance(value, Tensor):
        raise OpError(f"{op}: {arg} must be a Tensor, got {type(value).__name__}")
    return value


def check_ndim(op: str, arg: str, tensor: Tensor, ndim: int) -> None:
    check_tensor(op, arg, tensor)
    if tensor.ndim != ndim:
        raise OpError(f"{op}: {arg} must be {ndim}-D, got shape {tensor.shape}")


def check_float(op: str, arg: str, tensor: Tensor) -> None:
    if tensor.dtype not in FLOAT_DTYPES:
        raise OpError(f"{op}: {arg} must be float32 or float64, got {tensor.dtype}")


def check_same_dtype(op: str, a: Tensor, b: Tensor) -> None:
    if a.dtype != b.dtype:
        raise OpError(f"{op}: dtypes differ: {a.name} is {a.dtype}, {b.name} is {b.dtype}")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def normalize_axis(op: str, axis: int, ndim: int, *, arg: str = "axis") -> int:
    """`axis` in [0, ndim), negative axes counted from the end."""
    if not is_int(axis) or not -ndim <= axis < ndim:
        raise OpError(f"{op}: {arg} {axis!r} is out of range for a {ndim}-D tensor")
    return axis % ndim


def normalize_axes(op: str, axes: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Sorted distinct axes in [0, ndim); None means all axes."""
    if axes is None:
        return tuple(range(ndim))
    items = [axes] if isinstance(axes, int) else list(axes)
    out = [normalize_axis(op, a, ndim, arg="axes") for a in items]
    if len(set(out)) != len(out):
        raise OpError(f"{op}: axes {items} name the same axis twice")
    return tuple(sorted(out))


def positive_ints(op: str, arg: str, value: IntOrPair, n: int) -> tuple[int, ...]:
    """An int or a sequence of n positive ints (stride, kernel, dilation) as an n-tuple."""
    items = (value,) * n if isinstance(value, int) else tuple(value)
    if len(items) != n or not all(is_int(v) and v > 0 for v in items):
        raise OpError(f"{op}: {arg} must be a positive int or {n} positive ints, got {value!r}")
    return items


def padding4(op: str, padding: IntOrPair) -> tuple[int, int, int, int]:
    """2-D padding as (top, left, bottom, right) from p, (ph, pw) or (top, left, bottom, right)."""
    items = (padding,) if isinstance(padding, int) else tuple(padding)
    if len(items) not in (1, 2, 4) or not all(is_int(p) and p >= 0 for p in items):
        raise OpError(
            f"{op}: padding must be p, (ph, pw) or (top, left, bottom, right) of ints >= 0, "
            f"got {padding!r}"
        )
    if len(items) == 1:
        return (items[0],) * 4
    if len(items) == 2:
        return (items[0], items[1], items[0], items[1])
    return items[0], items[1], items[2], items[3]


def broadcast_shapes(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy broadcasting of two shapes (aligned on the right; 1 stretches)."""
    ndim = max(len(a), len(b))
    pa, pb = (1,) * (ndim - len(a)) + a, (1,) * (ndim - len(b)) + b
    out = []
    for x, y in zip(pa, pb):
        if x != y and 1 not in (x, y):
            raise OpError(f"{op}: cannot broadcast shapes {a} and {b}")
        out.append(max(x, y))
    return tuple(out)


def broadcast_read(tensor: Tensor, out_indices: Sequence[Expr], out_shape: Sequence[int]) -> Expr:
    """`tensor` read at the output position `out_indices` under numpy broadcasting.

    Only stretched dimensions read index 0, so a same-shape read stays the plain
    `t[i, j, ...]` that the elementwise-fusion analysis recognises.
    """
    lead = len(out_indices) - tensor.ndim
    idx = [
        0 if d == 1 and out_shape[lead + k] != 1 else out_indices[lead + k]
        for k, d in enumerate(tensor.shape)
    ]
    return tensor[tuple(idx)]


def as_operand(op: str, value: Tensor | float, dtype: str) -> Expr:
    """A Python scalar as a constant of `dtype` (OpError when it does not fit); Python
    bools only for bool tensors."""
    if isinstance(value, bool) and dtype != "bool" or not isinstance(value, (int, float)):
        raise OpError(f"{op}: operands must be Tensors or Python numbers, got {value!r}")
    try:
        return te.const(value, dtype)
    except TypeError as err:
        raise OpError(f"{op}: the scalar {value!r} does not fit a {dtype} tensor") from err


def window_index(out: Expr, stride: int, tap: Expr, dilation: int) -> Expr:
    """out * stride + tap * dilation, without multiplications by 1."""
    base = out * stride if stride != 1 else out
    return base + (tap * dilation if dilation != 1 else tap)
