"""Index simplification (compiler/lower/simplify.py): floor division and modulo by a
multiple of a group of terms' common factor, as a channel shuffle's reshapes give them
(ShuffleNetV2), exact over every value in range and free of the SIMD lane."""

from __future__ import annotations

import itertools

import pytest

from compiler.lower.simplify import Simplifier
from compiler.te.expr import BinOp, IntImm, Var
from compiler.te.kinds import BinOpKind
from compiler.te.traverse import substitute, walk

X, A = Var("x"), Var("a")


def _int(v: int) -> IntImm:
    return IntImm(v, "int32")


def _op(kind: BinOpKind, a, b) -> BinOp:
    return BinOp(kind, a, b)


def _flat(width: int, plane: int):
    """x + width * (a % k) + plane * (a // k), k = plane // width: a flattened index."""
    k = plane // width
    row = _op(BinOpKind.MUL, _int(width), _op(BinOpKind.FLOORMOD, A, _int(k)))
    col = _op(BinOpKind.MUL, _int(plane), _op(BinOpKind.FLOORDIV, A, _int(k)))
    return _op(BinOpKind.ADD, _op(BinOpKind.ADD, X, row), col)


def _value(e, x: int, a: int) -> int:
    got = Simplifier().simplify(substitute(e, {X: _int(x), A: _int(a)}))
    assert isinstance(got, IntImm), got
    return got.value


@pytest.mark.parametrize("kind", [BinOpKind.FLOORDIV, BinOpKind.FLOORMOD])
@pytest.mark.parametrize(("x_max", "divisor"), [(13, 392), (13, 588), (20, 392), (13, 100)])
def test_division_by_a_multiple_of_a_terms_factor_is_exact(kind, x_max, divisor):
    """x in 0..13 keeps the rest below 196, so 196 * (a // 14) is a group of the 392 or
    588 divided by; with x up to 20 the rest can reach 196 and no group is taken; 100
    shares no useful factor. Every case must keep its value."""
    e = _op(kind, _flat(14, 196), _int(divisor))
    simplified = Simplifier({X: (0, x_max), A: (0, 95)}).simplify(e)
    for x, a in itertools.product(range(x_max + 1), range(96)):
        flat = x + 14 * (a % 14) + 196 * (a // 14)
        want = flat // divisor if kind is BinOpKind.FLOORDIV else flat % divisor
        assert _value(simplified, x, a) == want


def test_the_lane_leaves_the_division():
    """With x the SIMD lane (0..13), (x + 14*(a % 14) + 196*(a // 14)) // 392 no longer
    holds x, and the modulo keeps it only as a plain term: both vectorize."""
    simp = Simplifier({X: (0, 13), A: (0, 95)})
    for kind in (BinOpKind.FLOORDIV, BinOpKind.FLOORMOD):
        e = simp.simplify(_op(kind, _flat(14, 196), _int(392)))
        divisions = [
            n
            for n in walk(e)
            if isinstance(n, BinOp) and n.op in (BinOpKind.FLOORDIV, BinOpKind.FLOORMOD)
        ]
        assert divisions and all(X not in set(walk(d)) for d in divisions)
