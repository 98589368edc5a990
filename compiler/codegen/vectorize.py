"""Analysis for SIMD code: affine indices and whether a loop body can run as vectors.

Emission lives with the expressions (`exprs`, `memory`); this module only
answers questions about the loop IR.
"""

from __future__ import annotations

from math import gcd

from compiler.lower.loop_ir import (
    Allocate,
    For,
    ForKind,
    IfThenElse,
    Load,
    Scope,
    Seq,
    Stmt,
    Store,
    seq,
)
from compiler.lower.passes import substitute_stmt
from compiler.te.expr import BinOp, Cast, Expr, IntImm, Var
from compiler.te.kinds import BinOpKind
from compiler.te.traverse import free_vars, substitute, walk


def affine_coef(e: Expr, v: Var) -> int | None:
    """The constant `c` such that `e = base + c*v` with `base` free of `v`; None if not affine."""
    match e:
        case Var():
            return 1 if e == v else 0
        case IntImm():
            return 0
        case BinOp(BinOpKind.ADD | BinOpKind.SUB, a, b):
            ca, cb = affine_coef(a, v), affine_coef(b, v)
            if ca is None or cb is None:
                return None
            return ca + cb if e.op is BinOpKind.ADD else ca - cb
        case BinOp(BinOpKind.MUL, a, b):
            return _scaled_coef(a, b, v)
        case Cast(dtype, a) if dtype in ("int32", "int64") and a.dtype in ("int32", "int64"):
            return affine_coef(a, v)
    return 0 if v not in free_vars(e) else None


def _scaled_coef(a: Expr, b: Expr, v: Var) -> int | None:
    ca, cb = affine_coef(a, v), affine_coef(b, v)
    if ca == 0 and cb == 0:
        return 0
    if isinstance(b, IntImm) and ca is not None:
        return ca * b.value
    if isinstance(a, IntImm) and cb is not None:
        return cb * a.value
    return None  # the coefficient is not a constant


def base_index(e: Expr, v: Var, offset: int = 0) -> Expr:
    """`e` at `v = offset`: the index of the first lane."""
    return substitute(e, {v: IntImm(offset, v.dtype)})


def divisor(e: Expr) -> int:
    """A number that provably divides integer `e` (0 when `e` is 0); for alignment."""
    match e:
        case IntImm(value, _):
            return abs(value)
        case BinOp(BinOpKind.ADD | BinOpKind.SUB, a, b):
            return gcd(divisor(a), divisor(b))
        case BinOp(BinOpKind.MUL, a, b):
            return divisor(a) * divisor(b)
        case Cast(_, a) if a.dtype in ("int32", "int64"):
            return divisor(a)
    return 1


def can_vectorize(body: Stmt, v: Var) -> bool:
    """Whether `body` can run for all values of `v` at once in SIMD registers.

    Allowed: unrolled (or single-iteration) loops, branches on conditions that do
    not depend on `v`, stores. A store to an index that does not move with `v` of
    a value that does is a cross-lane dependence (a reduction into one element),
    so it is refused and the loop runs lane by lane.
    """
    match body:
        case Seq(stmts):
            return all(can_vectorize(s, v) for s in stmts)
        case For(_, extent, kind, inner):
            return (kind is ForKind.UNROLLED or extent == 1) and can_vectorize(inner, v)
        case IfThenElse(cond, then_case, else_case):
            cases = [c for c in (then_case, else_case) if c is not None]
            if v in free_vars(cond):  # per lane: masked loads and stores
                return all(_maskable(c, v) for c in cases)
            return all(can_vectorize(c, v) for c in cases)
        case Allocate(_, inner):
            return can_vectorize(inner, v)
        case Store(_, index, value):
            return v in free_vars(index) or v not in free_vars(value)
    return False


def _maskable(body: Stmt, v: Var) -> bool:
    """`body` can run under a per-lane condition: it vectorizes, every store writes one
    element per lane (so a masked store leaves the others alone), none accumulates into
    a local buffer (a register tile's partial columns: LLVM keeps no masked
    accumulator in registers, and a ViT's 197-column scores ran 1.5x slower with AVX2),
    and no integer division by a variable could trap on the lanes that are off."""
    if not can_vectorize(body, v):
        return False
    for st in _stores(body):
        if v not in free_vars(st.index):
            return False
        if st.buffer.scope is Scope.LOCAL and any(
            isinstance(n, Load) and n.buffer is st.buffer for n in walk(st.value)
        ):
            return False  # an accumulator: masked, it would live in memory, not registers
        for e in (st.index, st.value):
            for n in walk(e):
                if (
                    isinstance(n, BinOp)
                    and n.op in (BinOpKind.FLOORDIV, BinOpKind.FLOORMOD)
                    and not isinstance(n.b, IntImm)
                ):
                    return False
    return True


def _stores(body: Stmt) -> list[Store]:
    match body:
        case Seq(stmts):
            return [x for s in stmts for x in _stores(s)]
        case For(_, _, _, inner) | Allocate(_, inner):
            return _stores(inner)
        case IfThenElse(_, then_case, else_case):
            return _stores(then_case) + (_stores(else_case) if else_case is not None else [])
        case Store():
            return [body]
    return []


def strip_mine(loop: For, width: int) -> Stmt:
    """A wide vectorized loop as a serial loop over `width`-lane vector loops (+ remainder)."""
    v = loop.var
    outer, inner = Var(f"{v.name}.outer", v.dtype), Var(f"{v.name}.lane", v.dtype)
    full, rest = divmod(loop.extent, width)
    step = IntImm(width, v.dtype)
    body = substitute_stmt(loop.body, {v: outer * step + inner})
    stmts: list[Stmt] = [For(outer, full, ForKind.SERIAL, For(inner, width, loop.kind, body))]
    if rest:
        tail = substitute_stmt(loop.body, {v: IntImm(full * width, v.dtype) + inner})
        stmts.append(For(inner, rest, loop.kind, tail))
    return seq(*stmts)


def contains_loop(body: Stmt) -> bool:
    """Whether `body` holds a loop that runs more than once and is not unrolled."""
    match body:
        case Seq(stmts):
            return any(contains_loop(s) for s in stmts)
        case For(_, extent, kind, inner):
            return (kind is not ForKind.UNROLLED and extent > 1) or contains_loop(inner)
        case IfThenElse(_, then_case, else_case):
            return contains_loop(then_case) or (else_case is not None and contains_loop(else_case))
        case Allocate(_, inner):
            return contains_loop(inner)
    return False
