"""Index simplification with variable ranges.

Integer expressions are brought to a canonical linear form (a sum of
coefficient x atom, where atoms are variables or non-linear terms), so that
after lowering a vectorized loop variable appears as a plain `+ v` term.
Rewrites (each exact for floor division):
    (c*q + r) // c  ->  q + r // c          r // c -> 0   when 0 <= r < c
    (c*q + r) %  c  ->  r % c               r %  c -> r   when 0 <= r < c
    (x // c) * c + x % c  ->  x
Comparisons decided by the ranges fold to constants (guards disappear).
"""

from __future__ import annotations

from collections.abc import Mapping
from math import gcd, inf

from compiler.te.expr import BinOp, Cast, Cmp, Expr, FloatImm, IntImm, Not, Select, Var
from compiler.te.kinds import BinOpKind, CmpKind
from compiler.te.traverse import children, rebuild

Interval = tuple[float, float]
Lin = tuple[dict[Expr, int], int]
INT = ("int32", "int64")
TRUE = IntImm(1, "bool")
FALSE = IntImm(0, "bool")


class Simplifier:
    """Simplifies expressions given inclusive integer ranges of variables."""

    def __init__(self, ranges: Mapping[Var, tuple[int, int]] | None = None):
        self.ranges: dict[Var, tuple[int, int]] = dict(ranges or {})
        self._memo: dict[Expr, Expr] = {}
        self._linear_memo: dict[Expr, Lin] = {}

    def with_ranges(self, extra: Mapping[Var, tuple[int, int]]) -> Simplifier:
        return Simplifier({**self.ranges, **extra})

    # ---------------------------------------------------------- entry points

    def simplify(self, e: Expr) -> Expr:
        got = self._memo.get(e)
        if got is None:
            got = self._simplify(e)
            self._memo[e] = got
        return got

    def prove(self, cond: Expr) -> bool | None:
        """True/False when the ranges decide `cond`, else None."""
        s = self.simplify(cond)
        if isinstance(s, IntImm):
            return bool(s.value)
        return None

    def bound(self, e: Expr) -> Interval:
        """Inclusive [lo, hi] of an integer expression (may be infinite)."""
        if e.dtype not in INT:
            return (-inf, inf)
        terms, c = self._lin(e)
        lo = hi = float(c)
        for atom, k in terms.items():
            a_lo, a_hi = self._atom_bound(atom)
            lo += min(k * a_lo, k * a_hi) if k else 0
            hi += max(k * a_lo, k * a_hi) if k else 0
        return (lo, hi)

    # ----------------------------------------------------------- linear form

    def linear(self, e: Expr) -> Lin:
        """The linear form of `e` (memoized; a fresh dict each call: callers may edit it)."""
        got = self._lin(e)
        return (dict(got[0]), got[1])

    def _lin(self, e: Expr) -> Lin:
        """`linear` without the copy, for readers that do not edit it (leaves not memoized:
        building their form is cheaper than looking it up)."""
        t = type(e)
        if t is IntImm:
            return ({}, e.value)  # type: ignore[attr-defined]
        if t is Var:
            return ({e: 1}, 0)
        got = self._linear_memo.get(e)
        if got is None:
            got = self._linear_memo[e] = self._linear(e)
        return got

    def _linear(self, e: Expr) -> Lin:
        match e:
            case BinOp(BinOpKind.ADD, a, b):
                return _add(self._lin(a), self._lin(b), 1)
            case BinOp(BinOpKind.SUB, a, b):
                return _add(self._lin(a), self._lin(b), -1)
            case BinOp(BinOpKind.MUL, a, b):
                la, lb = self._lin(a), self._lin(b)
                if not la[0]:
                    return _scale(lb, la[1])
                if not lb[0]:
                    return _scale(la, lb[1])
                return self._atom(BinOp(BinOpKind.MUL, from_linear(la), from_linear(lb)))
            case BinOp(BinOpKind.FLOORDIV, a, IntImm(c)) if c > 0:
                return self._floordiv(self._lin(a), c)
            case BinOp(BinOpKind.FLOORMOD, a, IntImm(c)) if c > 0:
                return self._floormod(self._lin(a), c)
            case BinOp(BinOpKind.MIN | BinOpKind.MAX, a, b):
                return self._minmax(e.op, self.simplify(a), self.simplify(b))
        return self._atom(self._simplify_node(e))

    def _atom(self, e: Expr) -> Lin:
        if isinstance(e, IntImm):
            return ({}, e.value)
        return ({e: 1}, 0)

    def _floordiv(self, x: Lin, c: int) -> Lin:
        q = {a: k // c for a, k in x[0].items() if k % c == 0}
        r = ({a: k for a, k in x[0].items() if k % c}, x[1] % c)
        q_lin: Lin = (q, x[1] // c)
        lo, hi = self._lin_bound(r)
        if lo // c == hi // c:
            return _add(q_lin, ({}, int(lo // c)), 1)
        if (split := self._grouped(r, c)) is not None:  # (g*y + s) // (g*m) -> y // m
            g, y, _ = split
            return _add(q_lin, self._floordiv(y, c // g), 1)
        return _add(q_lin, ({BinOp(BinOpKind.FLOORDIV, from_linear(r), IntImm(c)): 1}, 0), 1)

    def _floormod(self, x: Lin, c: int) -> Lin:
        r = ({a: k % c for a, k in x[0].items() if k % c}, x[1] % c)
        lo, hi = self._lin_bound(r)
        if lo // c == hi // c:
            return _add(r, ({}, -c * int(lo // c)), 1)
        if (split := self._grouped(r, c)) is not None:  # (g*y + s) % (g*m) -> (y % m)*g + s
            g, y, rest = split
            return _add(_scale(self._floormod(y, c // g), g), rest, 1)
        return ({BinOp(BinOpKind.FLOORMOD, from_linear(r), IntImm(c)): 1}, 0)

    def _grouped(self, x: Lin, c: int) -> tuple[int, Lin, Lin] | None:
        """(g, y, s) with x = g*y + s, g a divisor of c above 1 and 0 <= s < g: the terms
        whose coefficients g divides, and the rest (the constant with them). A reshape's
        row index over a flattened plane, (x + 14*(a % 14) + 196*(a // 14)) // 392 with
        x < 14, is then (a // 14) // 2, free of the SIMD lane x."""
        for g in sorted({gcd(k, c) for k in x[0].values()}, reverse=True):
            if g <= 1 or g == c:
                continue
            y = ({a: k // g for a, k in x[0].items() if k % g == 0}, 0)
            rest = ({a: k for a, k in x[0].items() if k % g}, x[1])
            lo, hi = self._lin_bound(rest)
            if y[0] and lo >= 0 and hi < g:
                return g, y, rest
        return None

    def _minmax(self, op: BinOpKind, a: Expr, b: Expr) -> Lin:
        lo, hi = self.bound(BinOp(BinOpKind.SUB, a, b))
        if op is BinOpKind.MIN:
            pick = a if hi <= 0 else b if lo >= 0 else None
        else:
            pick = a if lo >= 0 else b if hi <= 0 else None
        if pick is not None:
            return self._lin(pick)
        return self._atom(BinOp(op, a, b))

    def _lin_bound(self, x: Lin) -> Interval:
        lo = hi = float(x[1])
        for atom, k in x[0].items():
            a_lo, a_hi = self._atom_bound(atom)
            lo += min(k * a_lo, k * a_hi)
            hi += max(k * a_lo, k * a_hi)
        return (lo, hi)

    def _atom_bound(self, a: Expr) -> Interval:
        match a:
            case Var():
                return self.ranges.get(a, (-inf, inf))
            case BinOp(BinOpKind.FLOORDIV, x, IntImm(c)) if c > 0:
                lo, hi = self.bound(x)
                return (lo // c, hi // c)
            case BinOp(BinOpKind.FLOORMOD, x, IntImm(c)) if c > 0:
                lo, hi = self.bound(x)
                return (lo, hi) if lo >= 0 and hi < c else (0, c - 1)
            case BinOp(BinOpKind.MIN | BinOpKind.MAX, x, y):
                (a0, a1), (b0, b1) = self.bound(x), self.bound(y)
                f = min if a.op is BinOpKind.MIN else max
                return (f(a0, b0), f(a1, b1))
            case BinOp(BinOpKind.MUL, x, y):
                (a0, a1), (b0, b1) = self.bound(x), self.bound(y)
                if inf in (abs(a0), abs(a1), abs(b0), abs(b1)):
                    return (-inf, inf)
                prods = [a0 * b0, a0 * b1, a1 * b0, a1 * b1]
                return (min(prods), max(prods))
            case Select(_, x, y):
                (a0, a1), (b0, b1) = self.bound(x), self.bound(y)
                return (min(a0, b0), max(a1, b1))
        return (-inf, inf)

    # ------------------------------------------------------------- simplify

    def _simplify(self, e: Expr) -> Expr:
        if e.dtype in INT and not isinstance(e, (Cmp, Not)):
            return from_linear(_merge_divmod(self.linear(e), self), e.dtype)
        return self._simplify_node(e)

    def _simplify_node(self, e: Expr) -> Expr:
        kids = children(e)
        new = tuple(self.simplify(k) for k in kids)
        node = e if all(a is b for a, b in zip(kids, new)) else rebuild(e, new)
        match node:
            case Cmp(op, a, b) if a.dtype in INT:
                decided = self._decide(op, a, b)
                return node if decided is None else decided
            case Not(IntImm(v)):
                return FALSE if v else TRUE
            case BinOp(BinOpKind.AND, a, b):
                return _and(a, b)
            case BinOp(BinOpKind.OR, a, b):
                return _or(a, b)
            case Select(IntImm(v), t, f):
                return t if v else f
            case BinOp(op, FloatImm(), FloatImm()):
                folded = _fold_float(node)
                return node if folded is None else folded
            case BinOp(BinOpKind.MUL, x, FloatImm(1.0)) | BinOp(BinOpKind.MUL, FloatImm(1.0), x):
                return x
            case BinOp(BinOpKind.ADD, x, FloatImm(0.0)) | BinOp(BinOpKind.ADD, FloatImm(0.0), x):
                return x
            case Cast(t, IntImm(v)) if t.startswith("float"):
                return FloatImm(float(v), t)
        return node

    def _decide(self, op: CmpKind, a: Expr, b: Expr) -> Expr | None:
        lo, hi = self.bound(BinOp(BinOpKind.SUB, a, b))
        verdict: bool | None = None
        match op:
            case CmpKind.LT:
                verdict = True if hi < 0 else False if lo >= 0 else None
            case CmpKind.LE:
                verdict = True if hi <= 0 else False if lo > 0 else None
            case CmpKind.GT:
                verdict = True if lo > 0 else False if hi <= 0 else None
            case CmpKind.GE:
                verdict = True if lo >= 0 else False if hi < 0 else None
            case CmpKind.EQ:
                verdict = True if lo == hi == 0 else False if lo > 0 or hi < 0 else None
            case CmpKind.NE:
                verdict = False if lo == hi == 0 else True if lo > 0 or hi < 0 else None
        return None if verdict is None else (TRUE if verdict else FALSE)


def _add(a: Lin, b: Lin, sign: int) -> Lin:
    terms = dict(a[0])
    for atom, k in b[0].items():
        v = terms.get(atom, 0) + sign * k
        if v:
            terms[atom] = v
        else:
            terms.pop(atom, None)
    return (terms, a[1] + sign * b[1])


def _scale(a: Lin, k: int) -> Lin:
    if k == 0:
        return ({}, 0)
    return ({atom: c * k for atom, c in a[0].items()}, a[1] * k)


def _merge_divmod(x: Lin, simp: Simplifier) -> Lin:
    """(y // c) * (c*k) + (y % c) * k  ->  y * k."""
    terms, const = x
    for atom, k in list(terms.items()):
        if atom not in terms:
            continue
        if isinstance(atom, BinOp) and atom.op is BinOpKind.FLOORMOD:
            y, c = atom.a, atom.b
            if not isinstance(c, IntImm):  # a modulo by a loaded value (integer data)
                continue
            div = BinOp(BinOpKind.FLOORDIV, y, c)
            if terms.get(div) == k * c.value:
                del terms[atom], terms[div]
                merged = _add((terms, const), _scale(simp._lin(y), k), 1)
                return _merge_divmod(merged, simp)
    return (terms, const)


def _order_key(atom: Expr) -> tuple[int, str]:
    # variables first (outer loops before inner by name is irrelevant), then compound terms
    return (0 if isinstance(atom, Var) else 1, repr(atom))


def from_linear(x: Lin, dtype: str = "int32") -> Expr:
    terms, const = x
    out: Expr | None = None
    for atom in sorted(terms, key=_order_key):
        k = terms[atom]
        term = atom if abs(k) == 1 else BinOp(BinOpKind.MUL, atom, IntImm(abs(k), atom.dtype))
        if out is None:
            out = term if k > 0 else BinOp(BinOpKind.SUB, IntImm(0, atom.dtype), term)
        else:
            out = BinOp(BinOpKind.ADD if k > 0 else BinOpKind.SUB, out, term)
    if out is None:
        return IntImm(const, dtype)
    if const:
        op = BinOpKind.ADD if const > 0 else BinOpKind.SUB
        out = BinOp(op, out, IntImm(abs(const), out.dtype))
    return out


def _and(a: Expr, b: Expr) -> Expr:
    if isinstance(a, IntImm):
        return b if a.value else FALSE
    if isinstance(b, IntImm):
        return a if b.value else FALSE
    return BinOp(BinOpKind.AND, a, b)


def _or(a: Expr, b: Expr) -> Expr:
    if isinstance(a, IntImm):
        return TRUE if a.value else b
    if isinstance(b, IntImm):
        return TRUE if b.value else a
    return BinOp(BinOpKind.OR, a, b)


def _fold_float(e: BinOp) -> Expr | None:
    a, b = e.a, e.b
    assert isinstance(a, FloatImm) and isinstance(b, FloatImm)
    ops = {
        BinOpKind.ADD: lambda x, y: x + y,
        BinOpKind.SUB: lambda x, y: x - y,
        BinOpKind.MUL: lambda x, y: x * y,
        BinOpKind.MIN: min,
        BinOpKind.MAX: max,
    }
    f = ops.get(e.op)
    return FloatImm(float(f(a.value, b.value)), a.dtype) if f else None


def simplify(e: Expr, ranges: Mapping[Var, tuple[int, int]] | None = None) -> Expr:
    return Simplifier(ranges).simplify(e)
