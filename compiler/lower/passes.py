"""Passes over a lowered loop nest: simplification of its index arithmetic and guards
(with every loop's range), and auto-unrolling of small loop nests."""

from __future__ import annotations

from compiler.lower.loop_ir import Allocate, For, ForKind, IfThenElse, Seq, Stmt, Store, seq
from compiler.lower.simplify import Simplifier
from compiler.te.expr import IntImm, Var


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
