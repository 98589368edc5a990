"""Reductions over axes: sum, mean, max, min, each a single stage tagged "reduce".

A mean is a scaled sum, sum(x * 1/n), rather than a sum stage and a divide
stage: the reduction stays one anchor stage that is also the op's output, and
the reciprocal is a compile-time constant (at most one rounding per term).
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Callable, Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import check_float, check_tensor, normalize_axes
from compiler.te import Expr, IterVar, Tensor

Axes = int | Sequence[int] | None


def _reduce(
    op: str,
    x: Tensor,
    axes: Axes,
    keepdims: bool,
    reducer: Callable[[Expr, tuple[IterVar, ...]], Expr],
    scale: Callable[[Expr, int], Expr] | None = None,
) -> Tensor:
    """One stage reducing `x` over `axes` with `reducer` (te.sum / te.max / te.min)."""
    check_tensor(op, "x", x)
    reduced = normalize_axes(op, axes, x.ndim)
    if not reduced:
        raise OpError(f"{op}: no axes to reduce (axes={axes!r}, shape {x.shape})")
    raxes = {k: te.reduce_axis(x.shape[k], name=f"r{k}") for k in reduced}
    kept = [k for k in range(x.ndim) if k not in raxes]
    shape = tuple(1 if k in raxes else x.shape[k] for k in range(x.ndim) if keepdims or k in kept)
    count = math.prod(x.shape[k] for k in reduced)

    def body(*i: Expr) -> Expr:
        out_index = dict(zip(kept, [i[k] for k in kept] if keepdims else i))
        value = x[tuple(out_index[k] if k in kept else raxes[k].var for k in range(x.ndim))]
        return reducer(scale(value, count) if scale else value, tuple(raxes.values()))

    attrs = {"axes": reduced, "keepdims": bool(keepdims)}
    return te.compute(shape, body, name=op, tag=tags.REDUCE, attrs=attrs)


def reduce_sum(x: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    """Sum over `axes` (None: all). Example: `s = reduce_sum(x, axes=-1, keepdims=True)`."""
    return _reduce("reduce_sum", x, axes, keepdims, te.sum)


def reduce_mean(x: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    """Mean over `axes` as a scaled sum. Example: `m = reduce_mean(x, axes=(2, 3))`."""
    check_tensor("reduce_mean", "x", x)
    check_float("reduce_mean", "x", x)
    return _reduce("reduce_mean", x, axes, keepdims, te.sum, _scale)


def reduce_max(x: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    """Maximum over `axes` (None: all). Example: `m = reduce_max(x, axes=1)`."""
    return _reduce("reduce_max", x, axes, keepdims, te.max)


def reduce_min(x: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    """Minimum over `axes` (None: all). Example: `m = reduce_min(x, axes=[0, -1])`."""
    return _reduce("reduce_min", x, axes, keepdims, te.min)


def _scale(value: Expr, count: int) -> Expr:
    return value if count == 1 else value * (1.0 / count)


MAX_PRODUCT_TERMS = 256  # reduce_prod writes its product out: no multiplicative reduction yet


def reduce_prod(x: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    """Product over `axes` (None: all), as one element-wise stage that multiplies the
    reduced entries written out (at most MAX_PRODUCT_TERMS of them): the IR's reductions
    are sums, maxima and minima. Example: `p = reduce_prod(x, axes=1)`."""
    check_tensor("reduce_prod", "x", x)
    reduced = normalize_axes("reduce_prod", axes, x.ndim)
    count = math.prod(x.shape[k] for k in reduced)
    if count > MAX_PRODUCT_TERMS:
        raise OpError(f"reduce_prod: {count} terms per product; at most {MAX_PRODUCT_TERMS}")
    kept = [k for k in range(x.ndim) if k not in reduced]
    shape = tuple(1 if k in reduced else x.shape[k] for k in range(x.ndim) if keepdims or k in kept)
    points = list(itertools.product(*(range(x.shape[k]) for k in reduced)))

    def body(*i: Expr) -> Expr:
        at = dict(zip(kept, [i[k] for k in kept] if keepdims else i))
        terms = []
        for point in points:
            fixed = dict(zip(reduced, point))
            terms.append(x[tuple(at[k] if k in at else fixed[k] for k in range(x.ndim))])
        return functools.reduce(operator.mul, terms)

    attrs = {"axes": reduced, "keepdims": bool(keepdims)}
    return te.compute(shape, body, name="reduce_prod", tag=tags.INJECTIVE, attrs=attrs)
