"""Traversal of expression trees: children, pre-order walk, free variables,
substitution and rebuilding a node with new children (pure functions)."""

from __future__ import annotations

from compiler.te.expr import (
    BinOp,
    Call,
    Cast,
    Cmp,
    Expr,
    FloatImm,
    IntImm,
    Not,
    Reduce,
    Select,
    TensorRead,
    Var,
)


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node (reads' indices included)."""
    match e:
        case BinOp(_, a, b) | Cmp(_, a, b):
            return (a, b)
        case Not(a) | Cast(_, a):
            return (a,)
        case Select(c, t, f):
            return (c, t, f)
        case Call(_, args):
            return args
        case TensorRead(_, idx):
            return idx
        case Reduce(_, src, _):
            return (src,)
    extra = getattr(e, "sub_exprs", None)  # nodes defined by later layers (loop IR Load)
    return extra() if extra is not None else ()


def walk(e: Expr):
    """Pre-order iteration over an expression tree."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def free_vars(e: Expr) -> set[Var]:
    return {n for n in walk(e) if isinstance(n, Var)}


def substitute(e: Expr, mapping: dict[Var, Expr]) -> Expr:
    """Replace variables by expressions (a pure rewrite; shares unchanged subtrees)."""
    if not mapping:
        return e
    return _subst(e, mapping, {})


def _subst(e: Expr, mapping: dict[Var, Expr], memo: dict[int, Expr]) -> Expr:
    key = id(e)
    if key in memo:
        return memo[key]
    out: Expr
    match e:
        case Var():
            out = mapping.get(e, e)
        case IntImm() | FloatImm():
            out = e
        case _:
            kids = children(e)
            new = tuple(_subst(k, mapping, memo) for k in kids)
            out = e if all(a is b for a, b in zip(kids, new)) else rebuild(e, new)
    memo[key] = out
    return out


def rebuild(e: Expr, kids: tuple[Expr, ...]) -> Expr:
    """The same node with new children (in `children()` order)."""
    match e:
        case BinOp(op, _, _):
            return BinOp(op, kids[0], kids[1])
        case Cmp(op, _, _):
            return Cmp(op, kids[0], kids[1])
        case Not():
            return Not(kids[0])
        case Cast(t, _):
            return Cast(t, kids[0])
        case Select():
            return Select(kids[0], kids[1], kids[2])
        case Call(f, _):
            return Call(f, tuple(kids))
        case TensorRead(t, _):
            return TensorRead(t, tuple(kids))
        case Reduce(c, _, axes):
            return Reduce(c, kids[0], axes)
    extra = getattr(e, "with_sub_exprs", None)
    return extra(kids) if extra is not None else e
