"""ONNX Resize and Upsample: the output size and scale of each axis, and per axis the tap
tables of ops.resize (input positions and weights), computed with numpy as onnx's
reference implementation does (coordinate modes, nearest rounding, linear, cubic with
exclude_outside, antialiased downsampling, tf_crop_and_resize's extrapolation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from models.onnx_import.attrs import const_input, input_name
from models.onnx_import.context import ImportContext

Attrs = dict[str, Any]
Coeffs = Callable[[float, float], np.ndarray]


def convert_resize(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    shape = ctx.shape(x)
    if node.op_type == "Upsample" or ctx.opset < 11:
        scales = const_input(ctx, node, 1, "scales")
        roi, sizes = None, None
        # Upsample (and Resize-10): asymmetric coordinates; nearest repeats (numpy.repeat)
        attrs = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor", **attrs}
        if scales is None and "scales" in attrs:
            scales = np.asarray(attrs["scales"], np.float32)
    else:
        roi = const_input(ctx, node, 1, "roi") if input_name(node, 1) else None
        scales = const_input(ctx, node, 2, "scales") if input_name(node, 2) else None
        sizes = const_input(ctx, node, 3, "sizes") if input_name(node, 3) else None
    if scales is not None and scales.size == 0:
        scales = None
    axes = [a % len(shape) for a in attrs.get("axes", range(len(shape)))]
    plan = _plan(shape, axes, scales, sizes, attrs.get("keep_aspect_ratio_policy", "stretch"))
    roi_full = _full_roi(roi, axes, len(shape))
    mode = str(attrs.get("mode", "nearest"))
    if ctx.dtype(x) not in ("float32", "float64") and mode != "nearest":
        raise ctx.fail(f"Resize mode {mode!r} needs float data, got {ctx.dtype(x)}")
    coeffs = _coefficients(mode, attrs)
    ctm = str(attrs.get("coordinate_transformation_mode", "half_pixel"))
    extrapolation = float(attrs.get("extrapolation_value", 0.0))
    tables, resized = [], []
    for axis, (scale, size) in enumerate(plan):
        window = (roi_full[axis], roi_full[axis + len(shape)])
        if _identity(scale, size, shape[axis], window):
            continue
        matrix, outside = axis_matrix(
            shape[axis], size, scale, ctm, coeffs, window, bool(attrs.get("exclude_outside", 0))
        )
        crop = ctm == "tf_crop_and_resize"
        tables += _tap_tables(ctx, matrix, outside if crop else None, ctx.dtype(x))
        resized.append(axis)
    if not resized:
        return [ctx.emit("reshape", [x], {"newshape": shape})]
    kw = {"axes": tuple(resized), "extrapolation": extrapolation if crop else None}
    return [ctx.emit("resize", [x, *tables], kw)]


def _plan(
    shape: tuple[int, ...], axes: list[int], scales: Any, sizes: Any, policy: str
) -> list[tuple[float, int]]:
    """(scale, output size) of every axis, as onnx's reference resolves them."""
    r = len(shape)
    if sizes is not None:
        out = list(shape)
        for a, s in zip(axes, np.asarray(sizes).reshape(-1)):
            out[a] = int(s)
        factors = [out[k] / shape[k] for k in range(r)]
        if policy in ("not_larger", "not_smaller"):
            pick = min if policy == "not_larger" else max
            common = pick(factors[a] for a in axes)
            factors = [common if k in axes else 1.0 for k in range(r)]
            out = [int(common * shape[k] + 0.5) if k in axes else shape[k] for k in range(r)]
        return list(zip(factors, out))
    factors = [1.0] * r
    for a, s in zip(axes, np.asarray(scales, np.float64).reshape(-1)):
        factors[a] = float(s)
    return [(f, int(f * n)) for f, n in zip(factors, shape)]


def _full_roi(roi: Any, axes: list[int], r: int) -> list[float]:
    full = [0.0] * r + [1.0] * r
    if roi is None or np.asarray(roi).size == 0:
        return full
    values = np.asarray(roi, np.float64).reshape(-1)
    for k, a in enumerate(axes):
        full[a], full[a + r] = float(values[k]), float(values[k + len(axes)])
    return full


def _identity(scale: float, size: int, length: int, window: tuple[float, float]) -> bool:
    unit = math.isclose(window[0], 0.0) and math.isclose(window[1], 1.0)
    return math.isclose(scale, 1.0) and size == length and unit


def _coefficients(mode: str, attrs: Attrs) -> Coeffs:
    antialias = bool(attrs.get("antialias", 0))
    if mode == "nearest":
        rounding = str(attrs.get("nearest_mode", "round_prefer_floor"))
        return lambda ratio, scale: _nearest(ratio, rounding)
    if mode == "linear":
        return _linear_antialias if antialias else (lambda r, s: np.array([1 - r, r]))
    if mode == "cubic":
        a = float(attrs.get("cubic_coeff_a", -0.75))
        if antialias:
            return lambda r, s: _cubic_antialias(r, s, a)
        return lambda r, s: _cubic(r, a)
    raise ValueError(f"Resize mode {mode!r} is not nearest, linear or cubic")


def _nearest(ratio: float, rounding: str) -> np.ndarray:
    if float(ratio).is_integer():
        return np.array([0.0, 1.0])
    ups = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5}
    up = ups.get(rounding, rounding == "ceil")
    return np.array([0.0, 1.0]) if up else np.array([1.0, 0.0])


def _cubic(r: float, a: float) -> np.ndarray:
    def near(t: float) -> float:
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t: float) -> float:
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return np.array([far(r + 1), near(r), near(1 - r), far(2 - r)])


def _cubic_antialias(r: float, scale: float, a: float) -> np.ndarray:
    scale = min(scale, 1.0)
    start = int(np.floor(-2 / scale) + 1)
    t = np.abs(scale * (np.arange(start, 2 - start) - r))
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    coeffs = np.where(t <= 1, near, np.where(t < 2, far, 0.0))
    return coeffs / coeffs.sum()


def _linear_antialias(r: float, scale: float) -> np.ndarray:
    scale = min(scale, 1.0)
    start = int(np.floor(-1 / scale) + 1)
    coeffs = np.clip(1 - np.abs((np.arange(start, 2 - start) - r) * scale), 0, 1)
    return coeffs / coeffs.sum()


def axis_matrix(
    length: int,
    size: int,
    scale: float,
    ctm: str,
    coeffs: Coeffs,
    window: tuple[float, float],
    exclude_outside: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The [size, length] interpolation matrix of one axis, and which outputs lie outside
    the input (tf_crop_and_resize)."""
    x = source_positions(length, size, scale, ctm, window)
    outside = (x < 0) | (x > length - 1) if ctm == "tf_crop_and_resize" else np.zeros(size, bool)
    whole = np.floor(x)
    ratios = np.where(x == whole, 1.0, x - whole)
    taps = np.stack([coeffs(float(r), scale) for r in ratios]).astype(np.float64)
    n = taps.shape[1]
    pad = int(np.ceil(n / 2))
    shifted = x + pad
    base = np.floor(shifted).astype(np.int64)
    frac = shifted - base
    if n % 2 == 0:
        offset = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    index = (base + offset)[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        taps = np.where((index < 0) | (index >= length), 0.0, taps)
        sums = taps.sum(axis=1, keepdims=True)
        taps = taps / np.where(sums == 0, 1.0, sums)
    matrix = np.zeros((size, length))
    rows = np.repeat(np.arange(size), n)
    np.add.at(matrix, (rows, np.clip(index, 0, length - 1).reshape(-1)), taps.reshape(-1))
    return matrix, outside


def source_positions(
    length: int, size: int, scale: float, ctm: str, window: tuple[float, float]
) -> np.ndarray:
    """The input coordinate of each output position (onnx's coordinate_transformation_mode)."""
    y = np.arange(size, dtype=np.float64)
    width = scale * length
    if ctm == "align_corners":
        return np.zeros(size) if width == 1 else y * (length - 1) / (width - 1)
    if ctm == "asymmetric":
        return y / scale
    if ctm == "tf_crop_and_resize":
        start, end = window
        if width == 1:
            return np.full(size, (end - start) * (length - 1) / 2) + start * (length - 1)
        return y * (end - start) * (length - 1) / (width - 1) + start * (length - 1)
    if ctm == "pytorch_half_pixel":
        return np.full(size, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if ctm == "half_pixel_symmetric":
        offset = length / 2 * (1 - size / width)
        return offset + (y + 0.5) / scale - 0.5
    raise ValueError(f"coordinate_transformation_mode {ctm!r} is not supported")


def _tap_tables(
    ctx: ImportContext, matrix: np.ndarray, outside: np.ndarray | None, dtype: str
) -> list[str]:
    """Constants idx [O, T] and w [O, T] of the matrix's nonzero entries (T the most in a
    row; unused taps read position 0 with weight 0), and outside [O] when given."""
    rows = [np.flatnonzero(row) for row in matrix]
    taps = max(1, max(len(r) for r in rows))
    if taps == 1 and not np.allclose(matrix.sum(axis=1), 1.0):
        taps = 2  # one tap is read without its weight
    idx = np.zeros((len(rows), taps), np.int32)
    weights = np.zeros((len(rows), taps), dtype)
    for i, cols in enumerate(rows):
        idx[i, : len(cols)] = cols
        weights[i, : len(cols)] = matrix[i, cols]
    names = [ctx.add_const(idx, "resize_idx"), ctx.add_const(weights, "resize_w")]
    if outside is not None:
        names.append(ctx.add_const(outside.astype(bool), "resize_outside"))
    return names
