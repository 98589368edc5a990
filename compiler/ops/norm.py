"""Normalizations: softmax and layer_norm, several stages all tagged with the op's name.

softmax is numerically stable: a max stage, an exp-sum stage of exp(x - max),
and a normalize stage exp(x - max) / sum. layer_norm is a mean stage, a
variance stage (two-pass: sum of squared deviations, stable) and a normalize
stage; means are scaled sums, sum(x * 1/n), as in reduce_mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import check_float, check_same_dtype, check_tensor, normalize_axis
from compiler.te import Expr, Tensor

# a summed term of layer_norm: f(x[row, k...], row)
Term = Callable[[Expr, tuple[Expr, ...]], Expr]


def _with(index: Sequence[Expr], ax: int, value: Expr) -> tuple[Expr, ...]:
    """`index` with `value` inserted at position ax."""
    return (*index[:ax], value, *index[ax:])


def _without(index: Sequence[Expr], ax: int) -> tuple[Expr, ...]:
    return (*index[:ax], *index[ax + 1 :])


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x - max) / sum(exp(x - max)) along `axis`. Example: `p = softmax(logits, axis=-1)`.

    The exponentials are a stage of their own, read by the sum and the normalization
    (the default schedule computes them once: analysis.keeps_costly_values), and the
    normalization multiplies by the sum's reciprocal, computed once per row; a ViT's
    3 x 197 x 197 softmax ran 110 -> 63 us that way (Zen 4)."""
    check_tensor("softmax", "x", x)
    check_float("softmax", "x", x)
    ax = normalize_axis("softmax", axis, x.ndim)
    rows = x.shape[:ax] + x.shape[ax + 1 :]
    k1 = te.reduce_axis(x.shape[ax], name="k")
    k2 = te.reduce_axis(x.shape[ax], name="k")
    row_max = te.compute(
        rows,
        lambda *i: te.max(x[_with(i, ax, k1.var)], axis=k1),
        name="softmax_max",
        tag=tags.SOFTMAX,
    )

    exps = te.compute(
        x.shape,
        lambda *i: te.exp(x[i] - row_max[_without(i, ax)]),
        name="softmax_exp",
        tag=tags.ELEMWISE,
    )
    row_sum = te.compute(
        rows,
        lambda *i: te.sum(exps[_with(i, ax, k2.var)], axis=k2),
        name="softmax_expsum",
        tag=tags.SOFTMAX,
    )

    def normalize(*i: Expr) -> Expr:
        return exps[i] * (1.0 / row_sum[_without(i, ax)])

    return te.compute(x.shape, normalize, name="softmax", tag=tags.SOFTMAX, attrs={"axis": ax})


def layer_norm(
    x: Tensor, gamma: Tensor, beta: Tensor | None, axis: int = -1, eps: float = 1e-5
) -> Tensor:
    """(x - mean) / sqrt(var + eps) * gamma + beta over the axes from `axis` to the end.

    gamma and beta have the shape of those trailing axes; beta may be None.
    Example: `y = layer_norm(h, gamma, beta, axis=-1)` for h of shape [B, S, D], gamma [D].
    """
    op = "layer_norm"
    check_tensor(op, "x", x)
    check_float(op, "x", x)
    ax = normalize_axis(op, axis, x.ndim)
    _check_affine("gamma", gamma, x, ax)
    if beta is not None:
        _check_affine("beta", beta, x, ax)
    mean = _scaled_sum(x, ax, lambda v, row: v, "layer_norm_mean")
    var = _scaled_sum(x, ax, lambda v, row: _square(v - mean[row]), "layer_norm_var")

    def normalize(*i: Expr) -> Expr:
        row, col = i[:ax], i[ax:]
        y = (x[i] - mean[row]) * te.rsqrt(var[row] + float(eps)) * gamma[col]
        return y if beta is None else y + beta[col]

    attrs: dict[str, object] = {"axis": ax, "eps": float(eps)}
    return te.compute(x.shape, normalize, name=op, tag=tags.LAYER_NORM, attrs=attrs)


def _check_affine(arg: str, t: Tensor, x: Tensor, ax: int) -> None:
    check_tensor("layer_norm", arg, t)
    check_same_dtype("layer_norm", x, t)
    if t.shape != x.shape[ax:]:
        raise OpError(
            f"layer_norm: {arg} has shape {t.shape} but x {x.shape} normalizes axes of shape "
            f"{x.shape[ax:]} (axis={ax - x.ndim})"
        )


def _scaled_sum(x: Tensor, ax: int, term: Term, name: str) -> Tensor:
    """Stage over x.shape[:ax]: sum of term(x[row, k...], row) / n over the trailing axes."""
    raxes = [te.reduce_axis(d, name=f"k{q}") for q, d in enumerate(x.shape[ax:])]
    n = math.prod(x.shape[ax:])

    def body(*row: Expr) -> Expr:
        value = term(x[row + tuple(r.var for r in raxes)], row)
        return te.sum(value * (1.0 / n) if n != 1 else value, axis=raxes)

    return te.compute(x.shape[:ax], body, name=name, tag=tags.LAYER_NORM)


def _square(v: Expr) -> Expr:
    return v * v
