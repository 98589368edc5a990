"""New compute definitions made by the cache_write and rfactor steps."""

from __future__ import annotations

from math import prod

from compiler.te.expr import (
    Expr,
    FloatImm,
    IntImm,
    IterKind,
    IterVar,
    Reduce,
    ReduceKind,
    Select,
    TensorRead,
    Var,
    const,
    substitute,
)
from compiler.te.tensor import Tensor


def _fresh_axes(op: Tensor, suffix: str) -> tuple[IterVar, ...]:
    return tuple(IterVar(Var(a.var.name + suffix), a.extent, IterKind.SPATIAL) for a in op.axes)


def cache_write(op: Tensor) -> tuple[Tensor, Tensor]:
    """(local, copy): `local` computes what `op` did; `copy[i] = local[i]`."""
    local = Tensor(op.name + ".local", op.shape, op.dtype, op.axes, op.body, op.tag, op.attrs)
    axes = _fresh_axes(op, "")
    body = TensorRead(local, tuple(a.var for a in axes))
    copy = Tensor(op.name, op.shape, op.dtype, axes, body, "cache_copy", ())
    return local, copy


def identity_element(kind: ReduceKind, dtype: str) -> Expr:
    """The value that does not change a reduction (padding of a ragged split)."""
    if kind is ReduceKind.SUM:
        return const(0, dtype)
    if dtype.startswith("float"):
        return FloatImm(float("-inf") if kind is ReduceKind.MAX else float("inf"), dtype)
    return IntImm(-(2**31) if kind is ReduceKind.MAX else 2**31 - 1, dtype)


def rfactor(op: Tensor, factor: int, factor_is_inner: bool) -> tuple[Tensor, Tensor]:
    """(rf, combine) for a reduction over the fused reduce axes split by `factor`.

    rf[s..., f] reduces over the other part of the split; combine[s...]
    reduces rf over f. The factored axis is rf's innermost axis so it can be
    vectorized.
    """
    body = op.body
    assert isinstance(body, Reduce)
    extents = [a.extent for a in body.axes]
    total = prod(extents)
    outer = -(-total // factor)
    f_extent, r_extent = (factor, outer) if factor_is_inner else (outer, factor)
    axes = _fresh_axes(op, ".rf")
    kf = IterVar(Var(op.name + ".kf"), f_extent, IterKind.SPATIAL)
    kr = IterVar(Var(op.name + ".kr"), r_extent, IterKind.REDUCE)
    fused = (kr.var * factor + kf.var) if factor_is_inner else (kf.var * factor + kr.var)
    mapping = {a.var: b.var for a, b in zip(op.axes, axes)}
    rest = fused
    for ax, ext in reversed(list(zip(body.axes, extents))):
        mapping[ax.var] = rest % ext if ax is not body.axes[0] else rest
        rest = rest // ext
    source = substitute(body.source, mapping)
    if total % factor:
        source = Select(fused < total, source, identity_element(body.combiner, op.dtype))
    rf_body = Reduce(body.combiner, source, (kr,))
    rf = Tensor(
        op.name + ".rf", op.shape + (f_extent,), op.dtype, axes + (kf,), rf_body, op.tag, op.attrs
    )
    out_axes = _fresh_axes(op, "")
    kc = IterVar(Var(op.name + ".kc"), f_extent, IterKind.REDUCE)
    read = TensorRead(rf, tuple(a.var for a in out_axes) + (kc.var,))
    combine_kind = body.combiner
    combine = Tensor(
        op.name, op.shape, op.dtype, out_axes, Reduce(combine_kind, read, (kc,)), op.tag, op.attrs
    )
    return rf, combine
