"""Ops whose values depend on positions: argmax / argmin, cumsum, trilu, one_hot, isnan /
isinf.

argmax is two reduction stages (the maximum, then the first or last position holding
it: a min / max of positions), cumsum one reduction stage over the positions up to
each output's (O(n^2) work along the axis, fine for the short axes models scan);
both are tagged as reductions and anchor their tasks. trilu, one_hot, isnan and isinf
are element-wise stages that fuse into their neighbours.
"""

from __future__ import annotations

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import check_float, check_tensor, normalize_axis
from compiler.te import Expr, Tensor

ARG_REDUCE = "arg_reduce"
CUMSUM = "cumsum"


def _with(index: tuple[Expr, ...], ax: int, value: Expr, keepdims: bool) -> tuple[Expr, ...]:
    """An input index from an output index: `value` at axis ax (replacing it if kept)."""
    rest = index[:ax] + index[ax + 1 :] if keepdims else index
    return (*rest[:ax], value, *rest[ax:])


def _arg(op: str, x: Tensor, axis: int, keepdims: bool, last: bool, largest: bool) -> Tensor:
    check_tensor(op, "x", x)
    ax = normalize_axis(op, axis, x.ndim)
    n = x.shape[ax]
    out = x.shape[:ax] + ((1,) if keepdims else ()) + x.shape[ax + 1 :]
    k1, k2 = te.reduce_axis(n, name="k"), te.reduce_axis(n, name="k")
    best = te.max if largest else te.min

    def value(*i: Expr) -> Expr:
        return best(x[_with(i, ax, k1.var, keepdims)], axis=k1)

    extreme = te.compute(out, value, name=f"{op}_value", tag=ARG_REDUCE)

    def position(*i: Expr) -> Expr:
        here = te.equal(x[_with(i, ax, k2.var, keepdims)], extreme[i])
        k = te.cast("int64", k2.var)
        if last:
            return te.max(te.select(here, k, te.const(-1, "int64")), axis=k2)
        return te.min(te.select(here, k, te.const(n, "int64")), axis=k2)

    attrs = {"axis": ax, "keepdims": keepdims, "last": last}
    return te.compute(out, position, name=op, tag=ARG_REDUCE, attrs=attrs)


def argmax(x: Tensor, axis: int = 0, keepdims: bool = True, last: bool = False) -> Tensor:
    """The position (int64) of the largest entry along `axis`, the first one (or the last)
    of equal entries (ONNX ArgMax). Example: `i = argmax(logits, axis=-1)`."""
    return _arg("argmax", x, axis, keepdims, last, largest=True)


def argmin(x: Tensor, axis: int = 0, keepdims: bool = True, last: bool = False) -> Tensor:
    """The position (int64) of the smallest entry along `axis` (ONNX ArgMin).
    Example: `i = argmin(d, axis=1, keepdims=False)`."""
    return _arg("argmin", x, axis, keepdims, last, largest=False)


def cumsum(x: Tensor, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Running sums along `axis` (ONNX CumSum): each entry plus those before it (after it
    with `reverse`; without itself if `exclusive`). Example: `pos = cumsum(mask, axis=1)`."""
    check_tensor("cumsum", "x", x)
    ax = normalize_axis("cumsum", axis, x.ndim)
    k = te.reduce_axis(x.shape[ax], name="k")
    zero = te.const(0, x.dtype)

    def body(*i: Expr) -> Expr:
        j = i[ax]
        if reverse:
            take = k.var > j if exclusive else k.var >= j
        else:
            take = k.var < j if exclusive else k.var <= j
        return te.sum(te.select(take, x[(*i[:ax], k.var, *i[ax + 1 :])], zero), axis=k)

    attrs = {"axis": ax, "exclusive": exclusive, "reverse": reverse}
    return te.compute(x.shape, body, name="cumsum", tag=CUMSUM, attrs=attrs)


def trilu(x: Tensor, k: int = 0, upper: bool = True) -> Tensor:
    """The upper (or lower) triangle of the last two axes from diagonal k, zeros elsewhere
    (ONNX Trilu). Example: `causal = trilu(ones, 0, upper=False)`."""
    check_tensor("trilu", "x", x)
    if x.ndim < 2:
        raise OpError(f"trilu: x must have at least 2 dimensions, got shape {x.shape}")
    zero = te.const(0, x.dtype)

    def body(*i: Expr) -> Expr:
        diff = i[-1] - i[-2]
        keep = diff >= k if upper else diff <= k
        return te.select(keep, x[i], zero)

    return te.compute(x.shape, body, name="trilu", tag=tags.ELEMWISE)


def one_hot(
    indices: Tensor, depth: int, off: float, on: float, axis: int = -1, dtype: str = "float32"
) -> Tensor:
    """`on` where the new axis's position equals the index (negative ones count from the
    end), `off` elsewhere (ONNX OneHot). Example: `y = one_hot(labels, 10, 0.0, 1.0)`."""
    check_tensor("one_hot", "indices", indices)
    ax = normalize_axis("one_hot", axis, indices.ndim + 1)
    shape = indices.shape[:ax] + (depth,) + indices.shape[ax:]
    hot, cold = te.const(on, dtype), te.const(off, dtype)

    def body(*i: Expr) -> Expr:
        idx = te.cast("int64", indices[i[:ax] + i[ax + 1 :]])
        wrapped = te.select(idx < 0, idx + depth, idx)
        return te.select(te.equal(wrapped, te.cast("int64", i[ax])), hot, cold)

    return te.compute(shape, body, name="one_hot", tag=tags.ELEMWISE, attrs={"axis": ax})


def isnan(x: Tensor) -> Tensor:
    """Whether each entry is NaN (bool). Example: `m = isnan(x)`."""
    check_float("isnan", "x", check_tensor("isnan", "x", x))
    body = lambda *i: te.not_equal(x[i], x[i])
    return te.compute(x.shape, body, name="isnan", tag=tags.ELEMWISE)


def isinf(x: Tensor, positive: bool = True, negative: bool = True) -> Tensor:
    """Whether each entry is +inf (if `positive`) or -inf (if `negative`), as bools (ONNX
    IsInf). Example: `m = isinf(x)`."""
    check_float("isinf", "x", check_tensor("isinf", "x", x))

    def body(*i: Expr) -> Expr:
        tests = []
        if positive:
            tests.append(te.equal(x[i], float("inf")))
        if negative:
            tests.append(te.equal(x[i], float("-inf")))
        return te.logical_or(*tests) if tests else te.const(False, "bool")

    return te.compute(x.shape, body, name="isinf", tag=tags.ELEMWISE)
