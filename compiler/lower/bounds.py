"""Bound inference: which region of a producer one iteration of its attach loop needs.

For a stage computed inside loop `u` of its consumer, the consumer's loops
outside and at `u` are fixed and the loops inside vary over their extents.
Each read index is brought to linear form; fixed terms stay symbolic (the
region's start moves with the outer loops), varying terms contribute their
numeric range, so the region's extent is a constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import inf

from compiler.lower.simplify import Lin, Simplifier, from_linear
from compiler.te.expr import BinOp, Expr, IntImm, Var
from compiler.te.kinds import BinOpKind
from compiler.te.traverse import walk


@dataclass(frozen=True)
class DimRegion:
    start: Expr  # symbolic in the fixed (outer) loop variables
    extent: int


def read_interval(index: Expr, varying: set[Var], simp: Simplifier) -> tuple[Lin, int, int]:
    """(fixed part, min, max of the varying part) of one index expression."""
    terms, const = simp.linear(simp.simplify(index))
    fixed: dict[Expr, int] = {}
    lo = hi = float(const)
    for atom, k in terms.items():
        if not any(isinstance(n, Var) and n in varying for n in walk(atom)):
            fixed[atom] = k
            continue
        a_lo, a_hi = simp.bound(atom)
        lo += min(k * a_lo, k * a_hi)
        hi += max(k * a_lo, k * a_hi)
    return (fixed, 0), lo, hi  # type: ignore[return-value]


def infer_region(
    reads: Sequence[Sequence[Expr]],
    shape: Sequence[int],
    varying: set[Var],
    simp: Simplifier,
) -> tuple[DimRegion, ...]:
    """The union over `reads` (each a tuple of indices) of the touched box, per dim."""
    out = []
    for d, dim in enumerate(shape):
        parts = [read_interval(r[d], varying, simp) for r in reads]
        out.append(_union(parts, dim, simp))
    return tuple(out)


def _union(parts: list[tuple[Lin, float, float]], dim: int, simp: Simplifier) -> DimRegion:
    base = parts[0][0]
    lo, hi = inf, -inf
    for fixed, p_lo, p_hi in parts:
        offset = 0  # the first part's start is the base
        if fixed is not base:
            diff = simp.linear(BinOp(BinOpKind.SUB, from_linear(fixed), from_linear(base)))
            if diff[0]:  # starts differ by a non-constant: give up on a tight box
                return DimRegion(IntImm(0), dim)
            offset = diff[1]
        lo, hi = min(lo, p_lo + offset), max(hi, p_hi + offset)
    if lo == -inf or hi == inf or hi - lo + 1 >= dim:
        return DimRegion(IntImm(0), dim)
    start = simp.simplify(BinOp(BinOpKind.ADD, from_linear(base), IntImm(int(lo))))
    return DimRegion(start, int(hi - lo + 1))
