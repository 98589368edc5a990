"""Matrix products with a constant right operand packed once, at compile time.

`pack_matmul_weight` turns B [K, N] into column panels Bp [N/P, K, P] (the GotoBLAS
layout `matmul_packed` builds on every call); `matmul_panels(A, Bp)` is A @ B read
from them. A register tile of the product then reads P contiguous floats of one
panel per step of k, and a tile's whole panel is one contiguous stretch of memory,
where B's columns [K, N] are K rows N floats apart.

Example:
    >>> import numpy as np
    >>> from compiler import te
    >>> bp = pack_matmul_weight(np.ones((64, 32), np.float32), 16)
    >>> bp.shape
    (2, 64, 16)
    >>> c = matmul_panels(te.placeholder((4, 10, 64)), te.placeholder(bp.shape))
    >>> c.shape, c.tag
    ((4, 10, 32), 'batch_matmul')
"""

from __future__ import annotations

import numpy as np

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import check_ndim, check_same_dtype, check_tensor
from compiler.te import Expr, Tensor


def pack_matmul_weight(weight: np.ndarray, panel: int) -> np.ndarray:
    """[K, N] -> [ceil(N/panel), K, panel], what `matmul_panels` reads; the last panel's
    columns past N are zeros."""
    k, n = weight.shape
    padded = -(-n // panel) * panel
    if padded != n:
        weight = np.pad(weight, ((0, 0), (0, padded - n)))
    return np.ascontiguousarray(weight.reshape(k, padded // panel, panel).transpose(1, 0, 2))


def matmul_panels(A: Tensor, B_panels: Tensor, columns: int | None = None) -> Tensor:
    """C[..., M, N] = A[..., M, K] @ B with `B_panels = pack_matmul_weight(B, P)`
    [ceil(N/P), K, P]; `columns` is N when P does not divide it (default: all the
    panels' columns). Tagged as the matmul (2-D A) or batch_matmul it computes."""
    op = "matmul_panels"
    check_tensor(op, "A", A)
    if A.ndim < 2:
        raise OpError(f"{op}: A must be at least 2-D, got shape {A.shape}")
    check_ndim(op, "B_panels", B_panels, 3)
    check_same_dtype(op, A, B_panels)
    panels, k_extent, panel = B_panels.shape
    if A.shape[-1] != k_extent:
        raise OpError(
            f"{op}: A {A.shape} has K={A.shape[-1]} but B_panels {B_panels.shape} has K={k_extent}"
        )
    if columns is None:
        columns = panels * panel
    if not (panels - 1) * panel < columns <= panels * panel:
        raise OpError(f"{op}: {columns} columns do not fill the last of {panels} panels of {panel}")
    k = te.reduce_axis(k_extent, name="k")

    def body(*idx: Expr) -> Expr:
        *batch, i, j = idx
        return te.sum(A[(*batch, i, k.var)] * B_panels[j // panel, k.var, j % panel], axis=k)

    two_d = A.ndim == 2
    return te.compute(
        (*A.shape[:-1], columns),
        body,
        name="matmul" if two_d else "batch_matmul",
        tag=tags.MATMUL if two_d else tags.BATCH_MATMUL,
        attrs={"panel": panel},
    )
