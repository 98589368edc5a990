"""Passes over a lowered loop nest: simplification of its index arithmetic and guards
(with every loop's range), the partition of loops whose last iteration alone is ragged,
the versioning of parallel loop bodies whose ragged tiles are few, and auto-unrolling of
small loop nests."""

from __future__ import annotations

from collections.abc import Callable

from compiler.lower.loop_ir import Allocate, For, ForKind, IfThenElse, Seq, Stmt, Store, seq
from compiler.lower.simplify import Simplifier, from_linear
from compiler.te.constructors import logical_and
from compiler.te.expr import BinOp, Cmp, Expr, IntImm, Select, Var
from compiler.te.kinds import BinOpKind, CmpKind
from compiler.te.traverse import children, free_vars, rebuild, substitute, walk


def simplify_stmt(s: Stmt, simp: Simplifier) -> Stmt:
    """`s` with its expressions simplified; guards proven true or false are dropped."""
    match s:
        case For(var, extent, kind, body):
            return For(var, extent, kind, simplify_stmt(body, simp))
        case Seq(stmts):
            return seq(*[simplify_stmt(x, simp) for x in stmts])
        case Store(buf, index, value):
            return Store(buf, simp.simplify(index), simp.simplify(value))
        case IfThenElse(cond, then_case, else_case):
            c = simp.simplify(cond)
            if isinstance(c, IntImm):
                chosen = then_case if c.value else else_case
                return simplify_stmt(chosen, simp) if chosen is not None else seq()
            other = None if else_case is None else simplify_stmt(else_case, simp)
            return IfThenElse(c, simplify_stmt(then_case, simp), other)
        case Allocate(buf, body):
            return Allocate(buf, simplify_stmt(body, simp))
    return s


def partition_ragged_loops(s: Stmt, simp: Simplifier) -> Stmt:
    """A serial loop whose guards only its last iteration can fail (a split that does not
    divide: `o * 16 + i < 197`) runs as two: iterations 0..n-2 without those guards,
    then the last one with them. The body of the first is plain again: its vector loops
    need no per-lane test and its register tiles no branch (TVM's loop partition)."""
    match s:
        case For(var, extent, kind, body):
            body = partition_ragged_loops(body, simp)
            if kind is ForKind.SERIAL and extent > 1:
                guards = [g for g in _guards(body) if var in free_vars(g)]
                inner = simp.with_ranges({var: (0, extent - 2)})
                if guards and all(inner.prove(g) is True for g in guards):
                    last = substitute_stmt(body, {var: IntImm(extent - 1, var.dtype)})
                    return seq(For(var, extent - 1, kind, simplify_stmt(body, inner)), last)
            return For(var, extent, kind, body)
    return _map_children(s, lambda x: partition_ragged_loops(x, simp))


def _map_children(s: Stmt, f: Callable[[Stmt], Stmt]) -> Stmt:
    """`s` rebuilt with `f` applied to each statement it holds (a loop's body, a
    sequence's statements, a branch's cases, an allocation's body)."""
    match s:
        case For(var, extent, kind, body):
            return For(var, extent, kind, f(body))
        case Seq(stmts):
            return seq(*[f(x) for x in stmts])
        case IfThenElse(cond, then_case, else_case):
            return IfThenElse(cond, f(then_case), None if else_case is None else f(else_case))
        case Allocate(buf, body):
            return Allocate(buf, f(body))
    return s


def version_ragged_tiles(s: Stmt, simp: Simplifier) -> Stmt:
    """The body of a parallel loop with ragged-split guards runs in two versions: without
    the guards when every iteration of the loops inside it passes them (a whole tile),
    else with them (the row's last, partial tile).

    A parallel loop cannot be partitioned like a serial one (partition_ragged_loops): its
    ragged iterations are spread over its range (every third tile of a fused
    [row, tile] loop). Instead each guard linear in the loops inside the body, and apart
    in them from the parallel iterations' terms, is taken at the inner loops' extreme:
    `x.i + 5 * (t % 3) < 13` over x.i in 0..4 becomes `4 + 5 * (t % 3) < 13`, tested
    once per iteration. Whole tiles then keep their accumulators in registers with no
    branch (TVM's loop partition does the same on its tiles)."""
    match s:
        case For(var, extent, kind, body):
            body = version_ragged_tiles(body, simp)
            if kind is ForKind.PARALLEL:
                body = _versioned(body, simp)
            return For(var, extent, kind, body)
    return _map_children(s, lambda x: version_ragged_tiles(x, simp))


def _versioned(body: Stmt, simp: Simplifier) -> Stmt:
    inner = Simplifier(_loop_ranges(body))
    hoisted = {}
    for g in dict.fromkeys(_guards(body) + _lane_selects(body)):
        whole = _guard_over_loops(g, inner, simp)
        if whole is not None:
            hoisted[g] = whole
    if not hoisted:
        return body
    fast = _drop_guards(body, set(hoisted))
    return IfThenElse(logical_and(*dict.fromkeys(hoisted.values())), fast, body)


def _guard_over_loops(g: Expr, inner: Simplifier, simp: Simplifier) -> Expr | None:
    """A condition on the enclosing loops under which `g` holds in every iteration of the
    loops `inner` has ranges of; None when `g` is not linear and separable in them."""
    if not isinstance(g, Cmp) or g.op not in (CmpKind.LT, CmpKind.LE, CmpKind.GT, CmpKind.GE):
        return None
    (ta, ca), (tb, cb) = simp.linear(g.a), simp.linear(g.b)
    diff = dict(ta)
    for atom, k in tb.items():
        diff[atom] = diff.get(atom, 0) - k
    loops = set(inner.ranges)
    inside, outside = {}, {}
    for atom, k in diff.items():
        if not k:
            continue
        atom_vars = free_vars(atom)
        if atom_vars <= loops:
            inside[atom] = k
        elif atom_vars & loops:
            return None
        else:
            outside[atom] = k
    if not inside or not outside:
        return None  # fixed per iteration or per inner loop: nothing to version on
    lo, hi = inner.bound(from_linear((inside, 0)))
    extreme = hi if g.op in (CmpKind.LT, CmpKind.LE) else lo
    if extreme in (float("inf"), float("-inf")):
        return None
    rest = from_linear((outside, ca - cb + int(extreme)))
    return Cmp(g.op, rest, IntImm(0, rest.dtype))


def _loop_ranges(s: Stmt) -> dict[Var, tuple[int, int]]:
    match s:
        case For(var, extent, _, body):
            return {var: (0, extent - 1), **_loop_ranges(body)}
        case Seq(stmts):
            return {v: r for x in stmts for v, r in _loop_ranges(x).items()}
        case IfThenElse(_, then_case, else_case):
            other = {} if else_case is None else _loop_ranges(else_case)
            return {**_loop_ranges(then_case), **other}
        case Allocate(_, body):
            return _loop_ranges(body)
    return {}


def _drop_guards(s: Stmt, dropped: set[Expr]) -> Stmt:
    """`s` without the conditions `dropped` in its branches that have no else case, and
    with each select of stored values whose conditions are all dropped taken as true."""
    if isinstance(s, IfThenElse) and s.else_case is None:
        kept = [c for c in _conjuncts(s.cond) if c not in dropped]
        then_case = _drop_guards(s.then_case, dropped)
        return IfThenElse(logical_and(*kept), then_case) if kept else then_case
    if isinstance(s, Store):
        return Store(s.buffer, s.index, _drop_selects(s.value, dropped))
    return _map_children(s, lambda x: _drop_guards(x, dropped))


def _drop_selects(e: Expr, dropped: set[Expr]) -> Expr:
    if isinstance(e, Select) and all(c in dropped for c in _conjuncts(e.cond)):
        return _drop_selects(e.true_value, dropped)
    kids = children(e)
    new = tuple(_drop_selects(k, dropped) for k in kids)
    return e if all(a is b for a, b in zip(kids, new)) else rebuild(e, new)


def _lane_selects(s: Stmt, lanes: frozenset[Var] = frozenset()) -> list[Expr]:
    """The conditions of the selects in stored values that test a SIMD loop's lanes (a
    register tile's reads past a ragged tensor, lowered as masked reads), conjunctions
    taken apart; selects on data or on other loops are left alone."""
    match s:
        case For(var, _, kind, body):
            inner = lanes | {var} if kind is ForKind.VECTORIZED else lanes
            return _lane_selects(body, inner)
        case Seq(stmts):
            return [g for x in stmts for g in _lane_selects(x, lanes)]
        case IfThenElse(_, then_case, else_case):
            other = [] if else_case is None else _lane_selects(else_case, lanes)
            return _lane_selects(then_case, lanes) + other
        case Allocate(_, body):
            return _lane_selects(body, lanes)
        case Store(_, _, value) if lanes:
            return [
                c
                for n in walk(value)
                if isinstance(n, Select)
                for c in _conjuncts(n.cond)
                if lanes & free_vars(c)
            ]
    return []


def _guards(s: Stmt) -> list[Expr]:
    """The conditions of every branch in `s`, conjunctions taken apart."""
    match s:
        case For(_, _, _, body) | Allocate(_, body):
            return _guards(body)
        case Seq(stmts):
            return [g for x in stmts for g in _guards(x)]
        case IfThenElse(cond, then_case, else_case):
            inner = _guards(then_case) + (_guards(else_case) if else_case is not None else [])
            return [*_conjuncts(cond), *inner]
    return []


def _conjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, BinOp) and e.op is BinOpKind.AND:
        return _conjuncts(e.a) + _conjuncts(e.b)
    return [e]


def substitute_stmt(s: Stmt, mapping: dict[Var, Expr]) -> Stmt:
    """`s` with variables replaced by expressions in every index, value and condition."""
    match s:
        case For(var, extent, kind, body):
            return For(var, extent, kind, substitute_stmt(body, mapping))
        case Seq(stmts):
            return seq(*[substitute_stmt(x, mapping) for x in stmts])
        case Store(buf, index, value):
            return Store(buf, substitute(index, mapping), substitute(value, mapping))
        case IfThenElse(cond, then_case, else_case):
            other = None if else_case is None else substitute_stmt(else_case, mapping)
            return IfThenElse(substitute(cond, mapping), substitute_stmt(then_case, mapping), other)
        case Allocate(buf, body):
            return Allocate(buf, substitute_stmt(body, mapping))
    raise TypeError(f"not a statement: {s!r}")


def _steps(s: Stmt) -> int:
    """Statement executions of a loop nest (vector loops count once)."""
    match s:
        case For(_, extent, kind, body):
            return _steps(body) * (1 if kind is ForKind.VECTORIZED else extent)
        case Seq(stmts):
            return sum(_steps(x) for x in stmts)
        case IfThenElse(_, then_case, else_case):
            return _steps(then_case) + (0 if else_case is None else _steps(else_case))
        case Allocate(_, body):
            return _steps(body)
    return 1


def auto_unroll(s: Stmt, limits: dict[Var, int], limit: int = 0) -> Stmt:
    """Serial loops under a loop var of `limits` (its auto_unroll_max_step) unrolled when
    their statement executions are at most that limit."""
    match s:
        case For(var, extent, kind, body):
            limit = limits.get(var, limit)
            body = auto_unroll(body, limits, limit)
            if kind is ForKind.SERIAL and limit and extent * _steps(body) <= limit:
                kind = ForKind.UNROLLED
            return For(var, extent, kind, body)
        case Seq(stmts):
            return seq(*[auto_unroll(x, limits, limit) for x in stmts])
        case IfThenElse(cond, then_case, else_case):
            other = None if else_case is None else auto_unroll(else_case, limits, limit)
            return IfThenElse(cond, auto_unroll(then_case, limits, limit), other)
        case Allocate(buf, body):
            return Allocate(buf, auto_unroll(body, limits, limit))
    return s
