"""Memory-access analysis of flat buffer indices, for the buffer-access features.

Lowering leaves every index in canonical linear form: a sum of `coefficient x
atom` terms plus a constant, where an atom is a loop variable or a non-linear
term (`f // 7`, `(f // 7) % 7`, `min(...)`). Ansor bounds each dimension of a
multi-dimensional access with an interval analysis; our buffers are flat, so the
touched region of an access is estimated from its terms instead (`touched`):
terms are merged from the smallest coefficient up, a term whose coefficient is
within the span so far keeps a dense set dense (windows like `y + ry`), a larger
one multiplies the count (boxes). The estimate is exact for boxes and dense
windows, which is what tiled loop nests produce, and capped by the buffer size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.te.expr import BinOp, Expr, IntImm, Var
from compiler.te.kinds import BinOpKind
from compiler.te.traverse import free_vars

CACHE_LINE_BYTES = 64

Linear = tuple[dict[Expr, int], int]


def linear(e: Expr) -> Linear:
    """`e` as ({atom: coefficient}, constant); non-linear parts become atoms."""
    terms: dict[Expr, int] = {}
    const = _collect(e, 1, terms)
    return {a: k for a, k in terms.items() if k}, const


def _collect(e: Expr, scale: int, terms: dict[Expr, int]) -> int:
    t = type(e)
    if t is BinOp:
        op, a, b = e.op, e.a, e.b  # type: ignore[attr-defined]
        if op is BinOpKind.ADD:
            return _collect(a, scale, terms) + _collect(b, scale, terms)
        if op is BinOpKind.SUB:
            return _collect(a, scale, terms) + _collect(b, -scale, terms)
        if op is BinOpKind.MUL:
            if type(b) is IntImm:
                return _collect(a, scale * b.value, terms)
            if type(a) is IntImm:
                return _collect(b, scale * a.value, terms)
    elif t is IntImm:
        return scale * e.value  # type: ignore[attr-defined]
    terms[e] = terms.get(e, 0) + scale
    return 0


@dataclass(frozen=True, slots=True)
class Term:
    """One term of an index: |coefficient|, distinct values of its atom, the
    deepest loop level the atom depends on (-1: none), and its slope per loop var."""

    coef: int
    extent: int
    depth: int
    slopes: tuple[tuple[Var, float], ...]


class SharedForms:
    """What the loop scopes of one program share, by object: the linear forms of index
    expressions, and the free variables of non-linear atoms with the slope along each.
    A program's stores share index subtrees (a reduction's init and update, the axis
    values every access of a stage is built from); each entry keeps its expression
    alive, so its id stays its own."""

    __slots__ = ("atoms", "linear")

    def __init__(self) -> None:
        self.linear: dict[int, tuple[dict[Expr, int], int, Expr]] = {}
        self.atoms: dict[int, tuple[list[Var], list[float], Expr]] = {}


class LoopScope:
    """The loops around a statement: each variable's level and extent."""

    def __init__(self, loops: Sequence[tuple[Var, int]], shared: SharedForms | None = None):
        self.level = {v: i for i, (v, _) in enumerate(loops)}
        self.extent = {v: e for v, e in loops}
        self.shared = SharedForms() if shared is None else shared

    def terms(self, index: Expr) -> tuple[tuple[Term, ...], int]:
        """The index's terms (sorted by coefficient) and its constant."""
        got = self.shared.linear.get(id(index))
        if got is None:
            got = self.shared.linear[id(index)] = (*linear(index), index)
        atoms, const, _ = got
        out = [self._term(a, k) for a, k in atoms.items()]
        out.sort(key=lambda t: t.coef)
        return tuple(out), const

    def _term(self, atom: Expr, coef: int) -> Term:
        if isinstance(atom, Var):
            depth = self.level.get(atom, -1)
            ext = self.extent.get(atom, 1)
            return Term(abs(coef), ext, depth, ((atom, float(coef)),))
        got = self.shared.atoms.get(id(atom))
        if got is None:
            fv = list(free_vars(atom))
            got = self.shared.atoms[id(atom)] = (fv, [_slope(atom, v) for v in fv], atom)
        vs = [(v, s) for v, s in zip(got[0], got[1]) if v in self.level]
        depth = max((self.level[v] for v, _ in vs), default=-1)
        lo, hi = self.bound(atom)
        slopes = tuple((v, coef * s) for v, s in vs)
        return Term(abs(coef), max(1, int(hi - lo + 1)), depth, slopes)

    def bound(self, e: Expr) -> tuple[float, float]:
        """Inclusive value range of an integer expression over the loop ranges."""
        if isinstance(e, IntImm):
            return e.value, e.value
        if isinstance(e, Var):
            return 0, self.extent.get(e, 1) - 1
        if isinstance(e, BinOp) and isinstance(e.b, IntImm) and e.b.value > 0:
            lo, hi = self.bound(e.a)
            c = e.b.value
            if e.op is BinOpKind.FLOORDIV:
                return lo // c, hi // c
            if e.op is BinOpKind.FLOORMOD:
                return (lo, hi) if 0 <= lo and hi < c else (0, c - 1)
        if isinstance(e, BinOp) and e.op in (BinOpKind.ADD, BinOpKind.SUB, BinOpKind.MUL):
            atoms, const = linear(e)
            if e in atoms:  # a product of two non-constant factors
                (a0, a1), (b0, b1) = self.bound(e.a), self.bound(e.b)
                prods = (a0 * b0, a0 * b1, a1 * b0, a1 * b1)
                return min(prods), max(prods)
            lo = hi = float(const)
            for a, k in atoms.items():
                a_lo, a_hi = self.bound(a)
                lo += min(k * a_lo, k * a_hi)
                hi += max(k * a_lo, k * a_hi)
            return lo, hi
        if isinstance(e, BinOp) and e.op in (BinOpKind.MIN, BinOpKind.MAX):
            (a0, a1), (b0, b1) = self.bound(e.a), self.bound(e.b)
            f = min if e.op is BinOpKind.MIN else max
            return f(a0, b0), f(a1, b1)
        return 0, 0  # unknown atoms (indirect loads): treated as one value


def _slope(e: Expr, v: Var) -> float:
    """Average change of `e` per step of `v` (for strides through `//` and `%`)."""
    if isinstance(e, Var):
        return 1.0 if e == v else 0.0
    if isinstance(e, BinOp):
        if e.op is BinOpKind.ADD:
            return _slope(e.a, v) + _slope(e.b, v)
        if e.op is BinOpKind.SUB:
            return _slope(e.a, v) - _slope(e.b, v)
        if isinstance(e.b, IntImm):
            if e.op is BinOpKind.MUL:
                return _slope(e.a, v) * e.b.value
            if e.op is BinOpKind.FLOORDIV:
                return _slope(e.a, v) / e.b.value
            if e.op is BinOpKind.FLOORMOD:
                return _slope(e.a, v)
    return 1.0 if v in free_vars(e) else 0.0


@dataclass(frozen=True, slots=True)
class Region:
    """Distinct elements touched, their span, and the contiguous run length."""

    count: int
    span: int
    run: int


def touched(terms: Sequence[Term], min_depth: int, size: int) -> Region:
    """The region an access touches while the loops at levels >= min_depth run."""
    count = span = 1
    run = 0
    for t in terms:
        if t.depth < min_depth or t.extent <= 1:
            continue
        new_span = span + t.coef * (t.extent - 1)
        if t.coef <= span:
            count = new_span if count == span else min(count * t.extent, new_span)
        else:
            if not run:
                run = span  # the first gap ends the contiguous run
            count *= t.extent
        span = new_span
    count = min(count, size)
    return Region(count, span, min(run or span, count))


def touched_levels(terms: Sequence[Term], n_levels: int, size: int) -> list[Region]:
    """`touched(terms, level, size)` for each level below n_levels. The region changes only
    at a level where some term starts to move, so it is computed there and nowhere else."""
    out: list[Region] = []
    depths = {t.depth for t in terms}
    region = None
    for level in range(n_levels - 1, -1, -1):
        if region is None or level in depths:
            region = touched(terms, level, size)
        out.append(region)
    out.reverse()
    return out


def union_count(regions: Sequence[Region], size: int) -> int:
    """Elements touched by several accesses of one buffer (capped by its size)."""
    return min(size, sum(r.count for r in regions))


def stride(terms: Sequence[Term], var: Var) -> float:
    """Elements the access moves per step of loop `var` (0: it does not move)."""
    total = 0.0
    for t in terms:
        for v, s in t.slopes:
            if v == var:
                total += s
    return abs(total)


def unique_lines(region: Region, elem_bytes: int) -> float:
    """Cache lines of a touched region: its runs split into lines, unless the runs
    sit closer than a line apart and share lines."""
    run_bytes = min(region.run * elem_bytes, CACHE_LINE_BYTES)
    by_runs = region.count * elem_bytes / max(run_bytes, 1)
    by_span = -(-region.span * elem_bytes // CACHE_LINE_BYTES)
    return max(1.0, min(by_runs, float(by_span)))


def dims_of(coef: int, strides: Sequence[int]) -> int:
    """The buffer dimension a flat-index coefficient steps along (row-major)."""
    for d, s in enumerate(strides):
        if s <= coef:
            return d
    return len(strides) - 1
