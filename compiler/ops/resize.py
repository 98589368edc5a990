"""resize: interpolation along some axes by per-axis tap tables (ONNX Resize, Upsample).

Interpolation is separable: along each resized axis, output position i reads input
positions idx[i, t] with weights w[i, t] (nearest: one tap of weight 1; linear: 2;
cubic: 4; antialiased downsampling: more). The tables are computed once, at import,
from the ONNX attributes (models/onnx_import/resize.py) and passed as constant tensors,
so the op itself knows no coordinate modes. With more than one tap the output is a
sum over the tap axes (a reduction stage tagged "resize" that anchors its task);
nearest is a gather (an injective stage). Positions flagged by an `outside` table
(tf_crop_and_resize's extrapolation) read `extrapolation` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import check_tensor, normalize_axes
from compiler.te import Expr, Tensor

RESIZE = "resize"


def resize(
    x: Tensor,
    *tables: Tensor,
    axes: Sequence[int],
    extrapolation: float | None = None,
) -> Tensor:
    """x resized along `axes`; `tables` holds, per axis, idx [O, T] (int32) and w [O, T]
    (x's dtype), then an outside [O] (bool) table per axis when `extrapolation` is given.

    Example: `y = resize(x, idx_h, w_h, idx_w, w_w, axes=(2, 3))`."""
    check_tensor("resize", "x", x)
    dims = normalize_axes("resize", axes, x.ndim)
    per_axis = 3 if extrapolation is not None else 2
    if len(tables) != per_axis * len(dims):
        raise OpError(
            f"resize: expected {per_axis} tables per axis {list(dims)}, got {len(tables)}"
        )
    idx = dict(zip(dims, tables[0::per_axis]))
    wts = dict(zip(dims, tables[1::per_axis]))
    outside = dict(zip(dims, tables[2::per_axis])) if extrapolation is not None else {}
    for d in dims:
        if idx[d].ndim != 2 or idx[d].shape != wts[d].shape:
            raise OpError(f"resize: axis {d}: tables {idx[d].shape} and {wts[d].shape} differ")
    shape = tuple(idx[k].shape[0] if k in idx else n for k, n in enumerate(x.shape))
    taps = {d: te.reduce_axis(idx[d].shape[1], name=f"t{d}") for d in dims if idx[d].shape[1] > 1}

    def body(*i: Expr) -> Expr:
        tap = {d: taps[d].var if d in taps else te.const(0, "int32") for d in dims}
        index = [idx[k][i[k], tap[k]] if k in idx else i[k] for k in range(x.ndim)]
        value = x[tuple(index)]
        for d in taps:
            value = value * wts[d][i[d], tap[d]]
        return te.sum(value, axis=list(taps.values())) if taps else value

    tag = RESIZE if taps else tags.INJECTIVE
    out = te.compute(shape, body, name="resize", tag=tag, attrs={"axes": dims})
    if not outside:
        return out
    fill = te.const(extrapolation, x.dtype)

    def extrapolate(*i: Expr) -> Expr:
        beyond = te.logical_or(*(outside[d][(i[d],)] for d in dims))
        return te.select(beyond, fill, out[i])

    return te.compute(shape, extrapolate, name="resize_extrapolate", tag=tags.ELEMWISE)
