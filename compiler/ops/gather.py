"""Gathers on computed indices: gather (ONNX Gather: the embedding lookup), gather_elements
and gather_nd.

Each is one stage tagged "injective,gather" whose body reads the data tensor at an
index loaded from the integer `indices` tensor. A negative index counts from the end
(ONNX); an index still out of range is clamped to the axis, so no program reads outside
its buffers whatever the indices hold (ONNX leaves such indices undefined; tuning
measures kernels on random small integers). The index is an int32 expression: tensors
have fewer than 2**31 elements along an axis.
"""

from __future__ import annotations

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import check_tensor, normalize_axis
from compiler.te import Expr, Tensor
from compiler.te.kinds import INT_DTYPES


def bounded_index(index: Expr, extent: int) -> Expr:
    """An integer index as an int32 in [0, extent): negative ones count from the end, the
    rest are clamped."""
    idx = te.cast("int64", index)
    wrapped = te.select(idx < 0, idx + extent, idx)
    return te.cast("int32", te.min_expr(te.max_expr(wrapped, 0), extent - 1))


def _check_indices(op: str, indices: Tensor) -> None:
    check_tensor(op, "indices", indices)
    if indices.dtype not in INT_DTYPES:
        raise OpError(f"{op}: indices must be integers, got {indices.dtype}")


def gather(data: Tensor, indices: Tensor, axis: int = 0) -> Tensor:
    """data's entries along `axis` at `indices`: out[a..., j..., b...] = data[a..., indices[j...],
    b...] (ONNX Gather). Example: `emb = gather(table, ids, axis=0)` for ids [B, S], table
    [V, H] gives [B, S, H]."""
    check_tensor("gather", "data", data)
    _check_indices("gather", indices)
    ax = normalize_axis("gather", axis, data.ndim)
    r = indices.ndim
    shape = data.shape[:ax] + indices.shape + data.shape[ax + 1 :]

    def body(*i: Expr) -> Expr:
        idx = bounded_index(indices[i[ax : ax + r]], data.shape[ax])
        return data[(*i[:ax], idx, *i[ax + r :])]

    return te.compute(shape, body, name="gather", tag=tags.GATHER, attrs={"axis": ax})


def gather_elements(data: Tensor, indices: Tensor, axis: int = 0) -> Tensor:
    """out[i] = data[i with its `axis` entry replaced by indices[i]] (ONNX GatherElements);
    the output has the indices' shape. Example: `y = gather_elements(x, idx, axis=1)`."""
    check_tensor("gather_elements", "data", data)
    _check_indices("gather_elements", indices)
    ax = normalize_axis("gather_elements", axis, data.ndim)
    if indices.ndim != data.ndim or any(
        k != ax and n > d for k, (n, d) in enumerate(zip(indices.shape, data.shape))
    ):
        raise OpError(
            f"gather_elements: indices {indices.shape} do not fit data {data.shape} "
            f"(same rank, no larger off axis {ax})"
        )

    def body(*i: Expr) -> Expr:
        idx = bounded_index(indices[i], data.shape[ax])
        return data[(*i[:ax], idx, *i[ax + 1 :])]

    return te.compute(
        indices.shape, body, name="gather_elements", tag=tags.GATHER, attrs={"axis": ax}
    )


def gather_nd(data: Tensor, indices: Tensor, batch_dims: int = 0) -> Tensor:
    """ONNX GatherND: the last axis of `indices` (length k) indexes data's axes batch_dims
    to batch_dims + k; the output is indices.shape[:-1] + data.shape[batch_dims + k:].
    Example: `y = gather_nd(x, idx)` for x [4, 5, 6], idx [3, 2] gives [3, 6]."""
    check_tensor("gather_nd", "data", data)
    _check_indices("gather_nd", indices)
    b, k = batch_dims, indices.shape[-1] if indices.ndim else 0
    if (
        indices.ndim < 1
        or not 0 <= b < min(data.ndim, indices.ndim)
        or data.shape[:b] != indices.shape[:b]
        or not 1 <= k <= data.ndim - b
    ):
        raise OpError(
            f"gather_nd: indices {indices.shape} do not index data {data.shape} "
            f"with batch_dims={batch_dims}"
        )
    lead = indices.shape[:-1]
    shape = lead + data.shape[b + k :]

    def body(*i: Expr) -> Expr:
        outer = i[: len(lead)]
        picked = [
            bounded_index(indices[(*outer, te.const(q, "int32"))], data.shape[b + q])
            for q in range(k)
        ]
        return data[(*i[:b], *picked, *i[len(lead) :])]

    attrs = {"batch_dims": b}
    return te.compute(shape, body, name="gather_nd", tag=tags.GATHER, attrs=attrs)
