"""2-D pooling on NCHW data (or blocked NCHWc [N, C/b, H, W, b]): max, average (one
reduction stage each) and global average.

Padding is never a separate stage here: out-of-input taps are masked with a
select (-inf for max, 0 for average), and only on the sides where a window
can actually leave the input. An average is a scaled sum in one stage,
sum(x * 1/count), so the anchor stage is also the op's output; `count` is a
constant when every window has the full kernel, otherwise an index expression.
`ceil_mode` follows ONNX / PyTorch: an extra last window counts only if it
starts inside the input or the left padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import (
    IntOrPair,
    check_float,
    check_tensor,
    padding4,
    positive_ints,
    window_index,
)
from compiler.te import Expr, Tensor


@dataclass(frozen=True)
class Window:
    """One spatial dimension of a pooling window: where its taps fall in the input."""

    size: int
    kernel: int
    stride: int
    dilation: int
    pad_lo: int
    pad_hi: int
    out: int

    @property
    def last_tap(self) -> int:
        """Input index of the last tap of the last window (may lie past the input)."""
        return (self.out - 1) * self.stride - self.pad_lo + self.dilation * (self.kernel - 1)

    def tap(self, o: Expr, r: Expr) -> Expr:
        """Input index of tap r of window o (negative inside the left padding)."""
        index = window_index(o, self.stride, r, self.dilation)
        return index - self.pad_lo if self.pad_lo else index

    def inside(self, index: Expr) -> list[Expr]:
        """Conditions for `index` to lie in the input, only those that can fail."""
        conds = [index >= 0] if self.pad_lo else []
        return conds + ([index < self.size] if self.last_tap >= self.size else [])

    def count(self, o: Expr, include_pad: bool) -> Expr | int:
        """Number of taps of window o counted by an average (a constant when it is)."""
        lo, hi = (-self.pad_lo, self.size + self.pad_hi) if include_pad else (0, self.size)
        start = o * self.stride if self.stride != 1 else o
        start = start - self.pad_lo if self.pad_lo else start
        full_lo, full_hi = -self.pad_lo >= lo, self.last_tap < hi
        if full_lo and full_hi:
            return self.kernel
        first = 0 if full_lo else te.max_expr(self._ceil_div(lo - start), 0)
        end = self.kernel if full_hi else te.min_expr(self._ceil_div(hi - start), self.kernel)
        taps = end if isinstance(first, int) else end - first
        return te.max_expr(taps, 1)  # >= 1: a window may lie wholly in excluded padding

    def _ceil_div(self, a: Expr) -> Expr:
        d = self.dilation
        return a if d == 1 else (a + (d - 1)) // d


def window(
    op: str,
    dim: str,
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    pads: tuple[int, int],
    ceil_mode: bool,
) -> Window:
    """The window of one dimension, with its output extent (floor or ceil mode)."""
    span = size + pads[0] + pads[1] - dilation * (kernel - 1) - 1
    if span < 0:
        raise OpError(
            f"{op}: the kernel {dim} {kernel} (dilation {dilation}) exceeds the padded input "
            f"{dim} {size + pads[0] + pads[1]}"
        )
    out = -(-span // stride) + 1 if ceil_mode else span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pads[0]:
        out -= 1  # the last window would start inside the right padding
    return Window(size, kernel, stride, dilation, pads[0], pads[1], out)


def _windows(
    op: str,
    data: Tensor,
    kernel: IntOrPair,
    stride: IntOrPair | None,
    padding: IntOrPair,
    dilation: IntOrPair,
    ceil_mode: bool,
) -> tuple[Window, Window, dict[str, object]]:
    """Checked (height window, width window, attrs) of a 2-D pool."""
    check_pool_data(op, data)
    if op != "max_pool2d" or data.dtype not in MAX_POOL_INT_DTYPES:
        check_float(op, "data", data)
    kernels = positive_ints(op, "kernel", kernel, 2)
    strides = kernels if stride is None else positive_ints(op, "stride", stride, 2)
    dilations = positive_ints(op, "dilation", dilation, 2)
    top, left, bottom, right = pads = padding4(op, padding)
    h, w = data.shape[2:4]
    wh = window(op, "height", h, kernels[0], strides[0], dilations[0], (top, bottom), ceil_mode)
    ww = window(op, "width", w, kernels[1], strides[1], dilations[1], (left, right), ceil_mode)
    attrs = {"kernel": kernels, "stride": strides, "padding": pads, "dilation": dilations}
    return wh, ww, attrs | {"ceil_mode": bool(ceil_mode)}


def check_pool_data(op: str, data: Tensor) -> None:
    """NCHW data, or blocked NCHWc [N, C/b, H, W, b] (pooled over H and W alike)."""
    check_tensor(op, "data", data)
    if data.ndim not in (4, 5):
        raise OpError(f"{op}: data must be 4-D (NCHW) or 5-D (NCHWc), got shape {data.shape}")


# integer data a max pool takes, with its padding value: those whose smallest value the
# reduction's initial value (int32's minimum, compiler/schedule/transforms.py) wraps to
MAX_POOL_INT_DTYPES = {"int32": -(2**31), "uint8": 0, "uint16": 0}


def max_pool2d(
    data: Tensor,
    kernel: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> Tensor:
    """Max over each window of NCHW data (float, or an integer type of MAX_POOL_INT_DTYPES);
    stride defaults to the kernel (as in PyTorch).

    Example: `y = max_pool2d(x, kernel=3, stride=2, padding=1)`.
    """
    wh, ww, attrs = _windows("max_pool2d", data, kernel, stride, padding, dilation, ceil_mode)
    ry, rx = te.reduce_axis(wh.kernel, name="ry"), te.reduce_axis(ww.kernel, name="rx")
    lowest = te.const(MAX_POOL_INT_DTYPES.get(data.dtype, float("-inf")), data.dtype)

    def body(*index: Expr) -> Expr:  # n, c, y, x and, blocked, the lane in the block
        n, c, y, x, *block = index
        iy, ix = wh.tap(y, ry.var), ww.tap(x, rx.var)
        inside = wh.inside(iy) + ww.inside(ix)
        read = data[n, c, iy, ix, *block]
        value = te.select(te.logical_and(*inside), read, lowest) if inside else read
        return te.max(value, axis=(ry, rx))

    shape = data.shape[:2] + (wh.out, ww.out) + data.shape[4:]
    return te.compute(shape, body, name="max_pool2d", tag=tags.POOL_MAX, attrs=attrs)


def avg_pool2d(
    data: Tensor,
    kernel: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
) -> Tensor:
    """Mean over each window of NCHW data; stride defaults to the kernel (as in PyTorch).

    The divisor counts the taps inside the input, plus those in the padding when
    `count_include_pad` (never the ceil_mode overhang past the padding).
    Example: `y = avg_pool2d(x, kernel=2, stride=2)`.
    """
    wh, ww, attrs = _windows("avg_pool2d", data, kernel, stride, padding, dilation, ceil_mode)
    attrs["count_include_pad"] = bool(count_include_pad)
    ry, rx = te.reduce_axis(wh.kernel, name="ry"), te.reduce_axis(ww.kernel, name="rx")

    def body(*index: Expr) -> Expr:  # n, c, y, x and, blocked, the lane in the block
        n, c, y, x, *block = index
        iy, ix = wh.tap(y, ry.var), ww.tap(x, rx.var)
        inside = wh.inside(iy) + ww.inside(ix)
        read = data[n, c, iy, ix, *block]
        value = te.select(te.logical_and(*inside), read, 0.0) if inside else read
        count = wh.count(y, count_include_pad) * ww.count(x, count_include_pad)
        return te.sum(_scaled(value, count, data.dtype), axis=(ry, rx))

    shape = data.shape[:2] + (wh.out, ww.out) + data.shape[4:]
    return te.compute(shape, body, name="avg_pool2d", tag=tags.POOL_AVG, attrs=attrs)


def _scaled(value: Expr, count: Expr | int, dtype: str) -> Expr:
    """value / count as a multiplication by the reciprocal (folded when count is static)."""
    if isinstance(count, int):
        return value if count == 1 else value * (1.0 / count)
    return value * (1.0 / te.cast(dtype, count))


def global_avg_pool2d(data: Tensor) -> Tensor:
    """Mean over H and W of NCHW data, keeping them as 1: [N, C, H, W] -> [N, C, 1, 1].

    Example: `y = global_avg_pool2d(x)`.
    """
    check_pool_data("global_avg_pool2d", data)
    check_float("global_avg_pool2d", "data", data)
    h, w = data.shape[2:4]
    ry, rx = te.reduce_axis(h, name="ry"), te.reduce_axis(w, name="rx")

    def body(*index: Expr) -> Expr:  # n, c, y, x and, blocked, the lane in the block
        n, c, _, _, *block = index
        read = data[n, c, ry.var, rx.var, *block]
        return te.sum(_scaled(read, h * w, data.dtype), axis=(ry, rx))

    shape = data.shape[:2] + (1, 1) + data.shape[4:]
    return te.compute(shape, body, name="global_avg_pool2d", tag=tags.GLOBAL_POOL_AVG)
