"""Passes over a lowered loop nest: simplification of its index arithmetic and guards
(with every loop's range), the partition of loops whose last iteration alone is ragged,
and auto-unrolling of small loop nests."""

from __future__ import annotations

from compiler.lower.loop_ir import Allocate, For, ForKind, IfThenElse, Seq, Stmt, Store, seq
from compiler.lower.simplify import Simplifier
from compiler.te.expr import BinOp, Expr, IntImm, Var
from compiler.te.kinds import BinOpKind
from compiler.te.traverse import free_vars, substitute


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
        case Seq(stmts):
            return seq(*[partition_ragged_loops(x, simp) for x in stmts])
        case IfThenElse(cond, then_case, else_case):
            other = None if else_case is None else partition_ragged_loops(else_case, simp)
            return IfThenElse(cond, partition_ragged_loops(then_case, simp), other)
        case Allocate(buf, body):
            return Allocate(buf, partition_ragged_loops(body, simp))
    return s


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
