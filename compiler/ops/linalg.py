"""Matrix products: matmul, batch_matmul, dense, and the bias add that follows them.

Each product is one reduction stage over `k`; a bias is a separate broadcast
stage so the partitioner can fuse it (and what follows) into the product.
"""

from __future__ import annotations

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import (
    broadcast_shapes,
    check_ndim,
    check_same_dtype,
    check_tensor,
    is_int,
    normalize_axis,
)
from compiler.te import Expr, Tensor


def _dims(
    op: str, a: Tensor, b: Tensor, transpose_a: bool, transpose_b: bool
) -> tuple[int, int, int]:
    """(M, K, N) of op(A) @ op(B) from the last two dims, checking that K agrees."""
    m, ka = a.shape[-2:][::-1] if transpose_a else a.shape[-2:]
    kb, n = b.shape[-2:][::-1] if transpose_b else b.shape[-2:]
    if ka != kb:
        raise OpError(
            f"{op}: A {a.shape} has K={ka} but B {b.shape} has K={kb} "
            f"(transpose_a={transpose_a}, transpose_b={transpose_b})"
        )
    return m, ka, n


def _read(t: Tensor, batch: tuple[Expr | int, ...], row: Expr, col: Expr, swap: bool) -> Expr:
    return t[batch + ((col, row) if swap else (row, col))]


def matmul(A: Tensor, B: Tensor, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    """C[M, N] = op(A) @ op(B) for 2-D A and B. Example: `C = matmul(A, B)`."""
    check_ndim("matmul", "A", A, 2)
    check_ndim("matmul", "B", B, 2)
    check_same_dtype("matmul", A, B)
    m, k_extent, n = _dims("matmul", A, B, transpose_a, transpose_b)
    k = te.reduce_axis(k_extent, name="k")

    def body(i: Expr, j: Expr) -> Expr:
        a = _read(A, (), i, k.var, transpose_a)
        b = _read(B, (), k.var, j, transpose_b)
        return te.sum(a * b, axis=k)

    return te.compute((m, n), body, name="matmul", tag=tags.MATMUL)


def matmul_packed(A: Tensor, B: Tensor, panel: int = 32) -> Tensor:
    """C = A @ B with B first repacked into column panels Bp[N/panel, K, panel].

    The packed layout makes the innermost loop of a register tile read B
    contiguously (the layout GotoBLAS-style kernels use). The packing stage is
    part of the computation here; for constant weights it runs once at compile
    time instead. Example: `C = matmul_packed(A, B, panel=32)`.
    """
    check_ndim("matmul_packed", "A", A, 2)
    check_ndim("matmul_packed", "B", B, 2)
    check_same_dtype("matmul_packed", A, B)
    m, k_extent, n = _dims("matmul_packed", A, B, False, False)
    if not is_int(panel) or panel <= 0 or n % panel:
        raise OpError(f"matmul_packed: panel must be a positive divisor of N={n}, got {panel!r}")
    packed = te.compute(
        (n // panel, k_extent, panel),
        lambda jo, kk, ji: B[kk, jo * panel + ji],
        name="B_packed",
        tag=tags.INJECTIVE,
        attrs={"layout": f"panel{panel}"},
    )
    k = te.reduce_axis(k_extent, name="k")
    return te.compute(
        (m, n),
        lambda i, j: te.sum(A[i, k] * packed[j // panel, k, j % panel], axis=k),
        name="matmul",
        tag=tags.MATMUL,
        attrs={"packed_panel": panel},
    )


def batch_matmul(
    A: Tensor, B: Tensor, transpose_a: bool = False, transpose_b: bool = False
) -> Tensor:
    """C[..., M, N] = op(A) @ op(B), batch dims broadcast like numpy.

    Example: `scores = batch_matmul(Q, K, transpose_b=True)` with Q, K of shape [B, H, S, D].
    """
    for arg, t in (("A", A), ("B", B)):
        check_tensor("batch_matmul", arg, t)
        if t.ndim < 2:
            raise OpError(f"batch_matmul: {arg} must be at least 2-D, got shape {t.shape}")
    check_same_dtype("batch_matmul", A, B)
    m, k_extent, n = _dims("batch_matmul", A, B, transpose_a, transpose_b)
    batch = broadcast_shapes("batch_matmul", A.shape[:-2], B.shape[:-2])
    k = te.reduce_axis(k_extent, name="k")

    def body(*idx: Expr) -> Expr:
        *b_idx, i, j = idx
        a = _read(A, _batch_index(A, b_idx, batch), i, k.var, transpose_a)
        b = _read(B, _batch_index(B, b_idx, batch), k.var, j, transpose_b)
        return te.sum(a * b, axis=k)

    return te.compute(batch + (m, n), body, name="batch_matmul", tag=tags.BATCH_MATMUL)


def _batch_index(
    t: Tensor, out_batch: list[Expr], batch_shape: tuple[int, ...]
) -> tuple[Expr | int, ...]:
    """t's batch indices for the output batch position (stretched dims read index 0)."""
    dims = t.shape[:-2]
    lead = len(out_batch) - len(dims)
    return tuple(
        0 if d == 1 and batch_shape[lead + q] != 1 else out_batch[lead + q]
        for q, d in enumerate(dims)
    )


def dense(X: Tensor, W: Tensor, bias: Tensor | None = None) -> Tensor:
    """Y[B, O] = X[B, I] @ W[O, I].T (+ bias[O] as a separate stage).

    Example: `Y = dense(X, W, b)`.
    """
    check_ndim("dense", "X", X, 2)
    check_ndim("dense", "W", W, 2)
    check_same_dtype("dense", X, W)
    if X.shape[1] != W.shape[1]:
        raise OpError(
            f"dense: X {X.shape} has {X.shape[1]} input features but W {W.shape} expects "
            f"{W.shape[1]}"
        )
    k = te.reduce_axis(X.shape[1], name="k")
    out = te.compute(
        (X.shape[0], W.shape[0]),
        lambda i, j: te.sum(X[i, k.var] * W[j, k.var], axis=k),
        name="dense",
        tag=tags.DENSE,
    )
    return out if bias is None else bias_add(out, bias, axis=1)


def bias_add(data: Tensor, bias: Tensor, axis: int = 1) -> Tensor:
    """data + bias broadcast along `axis` (1: channels of NCHW, features of [B, O]).

    Example: `y = bias_add(conv, b)`.
    """
    check_tensor("bias_add", "data", data)
    check_ndim("bias_add", "bias", bias, 1)
    check_same_dtype("bias_add", data, bias)
    ax = normalize_axis("bias_add", axis, data.ndim)
    if bias.shape[0] != data.shape[ax]:
        raise OpError(
            f"bias_add: bias has {bias.shape[0]} elements but data {data.shape} has "
            f"{data.shape[ax]} along axis {axis}"
        )
    return te.compute(
        data.shape, lambda *i: data[i] + bias[i[ax]], name="bias_add", tag=tags.BROADCAST
    )
