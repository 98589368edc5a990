"""New compute definitions made by the cache_write and rfactor steps."""

from __future__ import annotations

from math import prod

import numpy as np

from compiler.te.expr import Expr, FloatImm, IntImm, IterVar, Reduce, Select, TensorRead, Var, const
from compiler.te.kinds import IterKind, ReduceKind
from compiler.te.tensor import Tensor, compute
from compiler.te.traverse import children, rebuild, substitute, walk


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
    if dtype == "bool":  # max: False, min: True
        return IntImm(int(kind is ReduceKind.MIN), dtype)
    info = np.iinfo(dtype)  # the dtype's own limits (int64's are not int32's)
    return IntImm(int(info.min) if kind is ReduceKind.MAX else int(info.max), dtype)


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


def pack_layout(op: Tensor, source: Tensor, axis_var: Var, panel: int) -> tuple[Tensor, Tensor]:
    """(packed, new op): `op` reading `source` through `packed`, whose dimension
    indexed by `axis_var` is split into [n / panel] outermost and [panel] innermost."""
    reads = [n for n in walk(op.body) if isinstance(n, TensorRead) and n.tensor is source]
    dims = {i for r in reads for i, e in enumerate(r.indices) if e == axis_var}
    if len(dims) != 1 or any(r.indices[min(dims)] != axis_var for r in reads):
        raise ValueError(f"{source.name} is not read along {axis_var.name} in one dimension")
    p = dims.pop()
    n = source.shape[p]
    if n % panel:
        raise ValueError(f"panel {panel} does not divide {source.name}'s dimension of {n}")
    rest = [d for i, d in enumerate(source.shape) if i != p]
    shape = (n // panel, *rest, panel)

    def body(*idx: Expr) -> Expr:
        src = list(idx[1:-1])
        src.insert(p, idx[0] * panel + idx[-1])
        return TensorRead(source, tuple(src))

    packed = compute(
        shape,
        body,
        name=f"{source.name}.packed",
        tag="injective,layout",
        attrs={"panel": panel, "dim": p},
    )

    def rewrite(e: Expr) -> Expr:
        if isinstance(e, TensorRead) and e.tensor is source:
            i = e.indices
            return TensorRead(packed, (i[p] // panel, *i[:p], *i[p + 1 :], i[p] % panel))
        kids = children(e)
        return rebuild(e, tuple(rewrite(k) for k in kids)) if kids else e

    assert op.body is not None
    new_op = Tensor(op.name, op.shape, op.dtype, op.axes, rewrite(op.body), op.tag, op.attrs)
    return packed, new_op
