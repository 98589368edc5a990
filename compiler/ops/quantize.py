"""Linear quantization (ONNX QuantizeLinear / DequantizeLinear) between float32 and
int8, uint8, int16, uint16 or int32: y = saturate(round(x / scale) + zero_point) and
x = (y - zero_point) * scale, with one scale (and zero point) for the whole tensor or
one per entry of an axis. Element-wise stages that fuse into their neighbours.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.rounding import half_even
from compiler.ops.shapes import check_float, check_tensor, normalize_axis
from compiler.te import Expr, Tensor

RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-(2**15), 2**15 - 1)}
RANGES |= {"uint16": (0, 2**16 - 1), "int32": (-(2**31), 2**31 - 1)}


Reader = Callable[[tuple[Expr, ...]], Expr]


def _per_axis(op: str, x: Tensor, param: Tensor | None, axis: int) -> Reader | None:
    """A reader of a scale or zero point at an index of x: one value, or one per entry of
    x's `axis`."""
    if param is None:
        return None
    check_tensor(op, "scale or zero point", param)
    if param.ndim == 0 or param.shape == (1,):
        return lambda i: param[(0,) * param.ndim]
    ax = normalize_axis(op, axis, x.ndim)
    if param.shape != (x.shape[ax],):
        raise OpError(
            f"{op}: a scale or zero point of shape {param.shape} is neither one value nor one "
            f"per entry of axis {ax} of {x.shape} (blocked quantization is not supported)"
        )
    return lambda i: param[(i[ax],)]


def dequantize_linear(
    x: Tensor, scale: Tensor, zero_point: Tensor | None = None, axis: int = 1
) -> Tensor:
    """(x - zero_point) * scale as float32. Example: `y = dequantize_linear(q, s, zp)`."""
    check_tensor("dequantize_linear", "x", x)
    check_float("dequantize_linear", "scale", check_tensor("dequantize_linear", "scale", scale))
    s = _per_axis("dequantize_linear", x, scale, axis)
    z = _per_axis("dequantize_linear", x, zero_point, axis)
    work = scale.dtype

    def body(*i: Expr) -> Expr:
        value = te.cast(work, x[i])
        if z is not None:
            value = value - te.cast(work, z(i))
        return value * s(i)

    return te.compute(x.shape, body, name="dequantize_linear", tag=tags.ELEMWISE)


def quantize_linear(
    x: Tensor,
    scale: Tensor,
    zero_point: Tensor | None = None,
    axis: int = 1,
    dtype: str = "uint8",
) -> Tensor:
    """round(x / scale) + zero_point (halves to even), saturated to `dtype` (a key of RANGES;
    the zero point's when there is one). Example: `q = quantize_linear(x, s, zp)`."""
    check_float("quantize_linear", "x", check_tensor("quantize_linear", "x", x))
    out = zero_point.dtype if zero_point is not None else dtype
    if out not in RANGES:
        raise OpError(f"quantize_linear: cannot quantize to {out} (one of {', '.join(RANGES)})")
    lo, hi = RANGES[out]
    s = _per_axis("quantize_linear", x, scale, axis)
    z = _per_axis("quantize_linear", x, zero_point, axis)

    def body(*i: Expr) -> Expr:
        value = half_even(x[i] / te.cast(x.dtype, s(i)))
        if z is not None:
            value = value + te.cast(x.dtype, z(i))
        return te.cast(out, te.min_expr(te.max_expr(value, float(lo)), float(hi)))

    return te.compute(x.shape, body, name="quantize_linear", tag=tags.ELEMWISE)
