"""einsum: a sum of products over the letters an equation leaves out of its output, one
stage (ONNX Einsum, numpy.einsum for one or more operands).

"ij,jk->ik" is a matmul, "bij,bjk->bik" a batched one, "ii->i" a diagonal, "ij->ji"
a transpose, "...ij->...ji" with an ellipsis for leading axes; without "->" the output
is the letters used once, in alphabetical order. The stage is tagged "einsum" and
anchors its task like the other reductions (a pure remap when nothing is summed).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import check_tensor
from compiler.te import Expr, Tensor

EINSUM = "einsum"


def _terms(equation: str, tensors: Sequence[Tensor]) -> tuple[list[str], str]:
    """Each operand's letters and the output's, ellipses spelled out as capital letters."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(tensors):
        raise OpError(f"einsum: {equation!r} names {len(inputs)} operands, got {len(tensors)}")
    widest = max((t.ndim - len(s.replace("...", "")) for s, t in zip(inputs, tensors)), default=0)
    spelled = []
    for s, t in zip(inputs, tensors):
        extra = t.ndim - len(s.replace("...", ""))
        spelled.append(s.replace("...", _ellipsis(widest)[widest - extra :]))
    if not arrow:
        joined = "".join(spelled)
        once = sorted(c for c in set(joined) if joined.count(c) == 1 and c.islower())
        rhs = _ellipsis(widest) + "".join(once)
    return spelled, rhs.replace("...", _ellipsis(widest))


def _ellipsis(n: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n]


def einsum(*tensors: Tensor, equation: str) -> Tensor:
    """The einsum of `tensors` (same dtype). Example: `c = einsum(a, b, equation="ij,jk->ik")`."""
    parts = [check_tensor("einsum", f"operand {k}", t) for k, t in enumerate(tensors)]
    if not parts or len({t.dtype for t in parts}) != 1:
        raise OpError(f"einsum: needs operands of one dtype, got {[t.dtype for t in parts]}")
    inputs, output = _terms(equation, parts)
    extent: dict[str, int] = {}
    for letters, t in zip(inputs, parts):
        if len(letters) != t.ndim:
            raise OpError(f"einsum: {letters!r} does not match an operand of shape {t.shape}")
        for c, d in zip(letters, t.shape):
            if extent.setdefault(c, d) != d:
                raise OpError(f"einsum: letter {c!r} is {extent[c]} and {d} in {equation!r}")
    if any(c not in extent for c in output):
        raise OpError(f"einsum: output letters of {equation!r} appear in no operand")
    summed = sorted(set(extent) - set(output))
    raxes = {c: te.reduce_axis(extent[c], name=f"r_{c}") for c in summed}
    shape = tuple(extent[c] for c in output)

    def body(*i: Expr) -> Expr:
        var = {c: i[k] for k, c in enumerate(output)} | {c: a.var for c, a in raxes.items()}
        reads = [t[tuple(var[c] for c in s)] for s, t in zip(inputs, parts)]
        product = functools.reduce(operator.mul, reads)
        return te.sum(product, axis=list(raxes.values())) if raxes else product

    tag = EINSUM if raxes else tags.INJECTIVE
    return te.compute(shape, body, name="einsum", tag=tag, attrs={"equation": equation})
