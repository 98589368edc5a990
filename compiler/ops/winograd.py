"""conv2d 3x3, stride 1, by Winograd's minimal filtering F(m x m, 3 x 3).

Each m x m tile of the output is computed from an (m+2) x (m+2) tile of the
input: Y = A^T [(G g G^T) (.) (B^T d B)] A. The element-wise products of all
tiles and channels form (m+2)^2 independent GEMMs, which carry the work:
2.25x (m = 2) or 4x (m = 4) fewer multiplications than the direct conv.

Stages (NCHW data in and out, as the network compiler runs a conv):
- `pad`: the input padded so that the tiles cover it;
- `winograd_data_rows`, then `winograd_data` V[e, nu, n, th, c, tw] =
  (B^T d B)[e, nu] of tile (th, tw), in two passes (B^T d, then that times B);
- `winograd_gemm` M[e, nu, n, th, tw, f] = sum_c V[e, nu, n, th, c, tw] U[e, nu, c, f];
- `winograd_inverse_cols`, then `winograd_inverse` I[n, th, i, tw, j, f] =
  (A^T M A)[i, j] (NHWC-like: f contiguous), in two passes;
- `winograd_unpack` NCHW output, cropped to the conv's extent.
U = G g G^T is computed once at compile time for constant weights
(`transform_conv_weight`). Each transform pass sums only the nonzero terms of
its constant matrix's row, chosen by the "constant axis" (`attrs["const_axes"]`);
once that loop is unrolled the choice is free. `attrs["tile_axes"]` names the
axes within a tile (extent m or m+2), which the default schedule unrolls.
This is TVM's conv2d_winograd (NHWC) with an NCHW boundary; schedules come from
the same rules as other ops plus SimplifyComputeWithConstTensor (docs/search.md#sketch-rules).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.nn import _conv_geometry, _pad_spatial
from compiler.ops.shapes import IntOrPair, check_ndim, check_same_dtype
from compiler.te import Expr, Tensor

TILES = (2, 4)  # supported output tile sizes m


@cache
def winograd_matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A [m+2, m], B [m+2, m+2], G [m+2, 3]) of F(m, 3) (Lavin and Gray, 2016),
    float64; interpolation points 0, 1, -1 (m = 2) and 0, +-1, +-2 (m = 4)."""
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    elif m == 4:
        bt = [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ]
        g = [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    else:
        raise OpError(f"conv2d_winograd: tile must be one of {TILES}, got {m}")
    return np.array(at, float).T, np.array(bt, float).T, np.array(g, float)


def transform_conv_weight(weight: np.ndarray, m: int) -> np.ndarray:
    """[F, C, 3, 3] -> U [m+2, m+2, C, F] = G g G^T per (f, c) (what conv2d_winograd reads)."""
    if weight.ndim != 4 or weight.shape[2:] != (3, 3):
        raise OpError(f"conv2d_winograd: weight must be [F, C, 3, 3], got {list(weight.shape)}")
    _, _, g = winograd_matrices(m)
    u = np.einsum("ek,fckl,nl->encf", g, weight.astype(np.float64), g)
    return np.ascontiguousarray(u.astype(weight.dtype))


def conv2d_winograd(
    data: Tensor,
    weight_winograd: Tensor,
    padding: IntOrPair = 1,
    tile: int = 4,
    filters: int | None = None,
) -> Tensor:
    """conv2d_nchw(data, weight, stride=1, padding) with
    `weight_winograd = transform_conv_weight(weight, tile)` [m+2, m+2, C, F].

    Example: `y = conv2d_winograd(x, u, padding=1, tile=4)` with x [1, 64, 56, 56].
    """
    op = "conv2d_winograd"
    check_ndim(op, "data", data, 4)
    check_ndim(op, "weight_winograd", weight_winograd, 4)
    check_same_dtype(op, data, weight_winograd)
    at, bt = (x.T for x in winograd_matrices(tile)[:2])
    m, alpha = tile, tile + 2
    a1, a2, channels, nf = weight_winograd.shape
    if (a1, a2) != (alpha, alpha):
        raise OpError(f"{op}: weight_winograd must be [{alpha}, {alpha}, C, F] for tile {m}")
    if channels != data.shape[1]:
        raise OpError(f"{op}: data has {data.shape[1]} channels, weight_winograd {channels}")
    filters = nf if filters is None else filters
    if not 0 < filters <= nf:
        raise OpError(f"{op}: filters={filters} does not fit weight_winograd's {nf}")
    kernel = te.placeholder((nf, channels, 3, 3), data.dtype)  # geometry only
    _, _, (top, left, bottom, right), (oh, ow) = _conv_geometry(op, data, kernel, 1, padding, 1)
    th, tw = -(-oh // m), -(-ow // m)
    n_img, _, h, w = data.shape
    padded = _pad_spatial(
        data, (top, left, max(bottom, th * m + 2 - h - top), max(right, tw * m + 2 - w - left))
    )

    # V = B^T d B in two passes, rows then columns: each pass's sum has at most 4
    # terms (one select chain of m+2 sums), where one pass had up to 16 of (m+2)^2
    rows = te.compute(
        (alpha, alpha, n_img, th, channels, tw),
        lambda e, s, n, y, c, x: _row_sum(e, bt, lambda r: padded[n, c, y * m + r, x * m + s]),
        name="winograd_data_rows",
        tag=tags.WINOGRAD_TRANSFORM,
        attrs={"const_axes": (0,), "tile_axes": (0, 1)},
    )
    v = te.compute(
        (alpha, alpha, n_img, th, channels, tw),
        lambda e, nu, n, y, c, x: _row_sum(nu, bt, lambda s: rows[e, s, n, y, c, x]),
        name="winograd_data",
        tag=tags.WINOGRAD_TRANSFORM,
        attrs={"const_axes": (1,), "tile_axes": (0, 1)},
    )
    rc = te.reduce_axis(channels, name="rc")
    gemm = te.compute(
        (alpha, alpha, n_img, th, tw, nf),
        lambda e, nu, n, y, x, f: te.sum(
            v[e, nu, n, y, rc.var, x] * weight_winograd[e, nu, rc.var, f], axis=rc
        ),
        name="winograd_gemm",
        tag=tags.WINOGRAD_GEMM,
    )
    # Y = A^T M A, columns then rows
    cols = te.compute(
        (alpha, m, n_img, th, tw, nf),
        lambda r, j, n, y, x, f: _row_sum(j, at, lambda s: gemm[r, s, n, y, x, f]),
        name="winograd_inverse_cols",
        tag=tags.WINOGRAD_TRANSFORM,
        attrs={"const_axes": (1,), "tile_axes": (0, 1)},
    )
    inverse = te.compute(
        (n_img, th, m, tw, m, nf),
        lambda n, y, i, x, j, f: _row_sum(i, at, lambda r: cols[r, j, n, y, x, f]),
        name="winograd_inverse",
        tag=tags.WINOGRAD_TRANSFORM,
        attrs={"const_axes": (2,), "tile_axes": (2, 4)},
    )
    return te.compute(
        (n_img, filters, oh, ow),
        lambda n, f, y, x: inverse[n, y // m, y % m, x // m, x % m, f],
        name="winograd_unpack",
        tag=tags.INJECTIVE,
    )


def _row_sum(axis: Expr, matrix: np.ndarray, read: Callable[[int], Expr]) -> Expr:
    """sum_k matrix[axis, k] * read(k), the nonzero terms only, for each row `axis` can
    select (a select chain that folds away once the axis is an unrolled constant).

    Each read, and each product of a read by a coefficient, is one node shared by
    every row that uses it: the passes that rewrite a body once per node (lowering,
    bounds) then do each once, not once per row (the search lowers every program it
    scores; the value is the same tree)."""
    rows, cols = matrix.shape
    reads = [read(k) for k in range(cols)]
    dtype = reads[0].dtype
    products: dict[tuple[int, float], Expr] = {}

    def term(k: int, c: float) -> Expr:
        if abs(c) == 1:
            return reads[k]
        key = (k, float(abs(c)))
        if key not in products:
            products[key] = reads[k] * te.const(float(abs(c)), dtype)
        return products[key]

    return _choose(
        axis,
        rows,
        lambda a: _combination(
            [(matrix[a, k], term(k, matrix[a, k])) for k in range(cols) if matrix[a, k]], dtype
        ),
    )


def _combination(terms: Sequence[tuple[float, Expr]], dtype: str) -> Expr:
    """sum(c * x) over the terms with c != 0, `x` already scaled by |c|."""
    out: Expr | None = None
    for c, x in terms:
        if c == 0:
            continue
        if out is None:
            out = x if c > 0 else -x
        else:
            out = out + x if c > 0 else out - x
    return out if out is not None else te.const(0.0, dtype)


def _choose(axis: Expr, extent: int, term: Callable[[int], Expr]) -> Expr:
    """term(a) at axis == a: a chain of selects that folds away once the axis is a
    constant (an unrolled loop)."""
    out = term(extent - 1)
    for a in reversed(range(extent - 1)):
        out = te.if_then_else(te.equal(axis, a), term(a), out)
    return out
