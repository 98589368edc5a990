"""Counting the arithmetic of one statement, and collecting its loads, in one walk.

Categories follow Ansor's MathOpCounter (layout.OP_NAMES), with two choices of ours:
- multiply-add is detected: `a * b + c` (or `c - a * b`) counts one mad and
  neither the add nor the multiply (Ansor leaves mad at zero, a to-do there);
- `Cast` counts as an "other" call of its result type (Ansor has no casts in
  its count; here they are the only calls that are not math functions).
The float/int split follows the operands' type; comparisons of floats are float
compares, min/max are compares, `&&`/`||`/`!` on bools are bool ops.

A subtree's counts are a function of the subtree alone, and the statements of one
program share subtrees (lowering builds every index of a stage from the same axis
values; a reduction's init, update and its load share one index). So an `OpCounter`,
one per program, counts each subtree once, by object. The 16 counts are kept as one
integer with a 32-bit field each, so the counts of two subtrees add in one addition.
"""

from __future__ import annotations

from compiler.lower.loop_ir import Buffer, Load
from compiler.te.expr import BinOp, Call, Cast, Cmp, Expr, FloatImm, IntImm, Not, Select, Var
from compiler.te.kinds import FLOAT_DTYPES, BinOpKind

# indices into the 16 computation counts (layout.OP_NAMES); int = float index + 7
MAD, ADDSUB, MUL, DIVMOD, CMP, MATH, OTHER = range(7)
INT_OFFSET = 7
BOOL_OP, SELECT_OP = 14, 15
N_COUNTS = 16

_FIELD_BITS = 32  # per-statement counts stay far below 2**32
_ONE = [1 << (_FIELD_BITS * i) for i in range(N_COUNTS)]  # _ONE[slot]: one op of that slot

_BINOP_SLOT = {
    BinOpKind.ADD: ADDSUB,
    BinOpKind.SUB: ADDSUB,
    BinOpKind.MUL: MUL,
    BinOpKind.DIV: DIVMOD,
    BinOpKind.FLOORDIV: DIVMOD,
    BinOpKind.FLOORMOD: DIVMOD,
    BinOpKind.MIN: CMP,
    BinOpKind.MAX: CMP,
}

Loads = tuple[tuple[Buffer, Expr], ...]
# packed counts, whether the value is a float, its loads (buffer, index) in visit order
Counted = tuple[int, bool, Loads]
_INT_LEAF: Counted = (0, False, ())
_FLOAT_LEAF: Counted = (0, True, ())


def unpack(packed: int) -> list[int]:
    """The 16 counts (layout.OP_NAMES order) of a packed count."""
    mask = (1 << _FIELD_BITS) - 1
    return [(packed >> (_FIELD_BITS * i)) & mask for i in range(N_COUNTS)]


class OpCounter:
    """Op counts and loads of the expressions of one program, each subtree counted once."""

    __slots__ = ("memo",)

    def __init__(self) -> None:
        # id(node) -> (its Counted, the node: kept alive so that its id stays its own)
        self.memo: dict[int, tuple[Counted, Expr]] = {}

    def count(self, e: Expr) -> Counted:
        """(packed op counts, is the value a float, loads in visit order) of `e`."""
        t = type(e)
        if t is IntImm or t is Var:
            return _INT_LEAF
        if t is FloatImm:
            return _FLOAT_LEAF
        got = self.memo.get(id(e))
        if got is None:
            got = self.memo[id(e)] = (self._count(e, t), e)
        return got[0]

    def _count(self, e: Expr, t: type) -> Counted:
        if t is BinOp:
            return self._binop(e)  # type: ignore[arg-type]
        if t is Load:
            c, _, loads = self.count(e.index)  # type: ignore[attr-defined]
            here = ((e.buffer, e.index),)  # type: ignore[attr-defined]
            return c, e.buffer.dtype in FLOAT_DTYPES, here + loads  # type: ignore[attr-defined]
        if t is Cmp:
            ca, is_float, la = self.count(e.a)  # type: ignore[attr-defined]
            cb, _, lb = self.count(e.b)  # type: ignore[attr-defined]
            return ca + cb + _ONE[CMP if is_float else CMP + INT_OFFSET], False, la + lb
        return self._other(e)

    def _binop(self, e: BinOp) -> Counted:
        op = e.op
        if op is BinOpKind.AND or op is BinOpKind.OR:
            ca, _, la = self.count(e.a)
            cb, _, lb = self.count(e.b)
            return ca + cb + _ONE[BOOL_OP], False, la + lb
        if op is BinOpKind.ADD or op is BinOpKind.SUB:
            mul = _mul_operand(e)
            if mul is not None:
                other = e.b if mul is e.a else e.a
                ca, is_float, la = self.count(mul.a)
                cb, _, lb = self.count(mul.b)
                cc, _, lc = self.count(other)
                slot = MAD if is_float else MAD + INT_OFFSET
                return ca + cb + cc + _ONE[slot], is_float, la + lb + lc
        ca, is_float, la = self.count(e.a)
        cb, _, lb = self.count(e.b)
        slot = _BINOP_SLOT[op]
        return ca + cb + _ONE[slot if is_float else slot + INT_OFFSET], is_float, la + lb

    def _other(self, e: Expr) -> Counted:
        if isinstance(e, Select):
            cc, _, lc = self.count(e.cond)
            cf, _, lf = self.count(e.false_value)
            ct, is_float, lt = self.count(e.true_value)
            return cc + cf + ct + _ONE[SELECT_OP], is_float, lc + lf + lt
        if isinstance(e, Not):
            c, _, loads = self.count(e.a)
            return c + _ONE[BOOL_OP], False, loads
        if isinstance(e, Call):
            total, is_float, loads = 0, False, ()
            for a in e.args:
                c, is_float, la = self.count(a)
                total += c
                loads += la
            return total + _ONE[MATH if is_float else MATH + INT_OFFSET], is_float, loads
        if isinstance(e, Cast):
            c, _, loads = self.count(e.value)
            is_float = e.type in FLOAT_DTYPES
            return c + _ONE[OTHER if is_float else OTHER + INT_OFFSET], is_float, loads
        return 0, e.dtype in FLOAT_DTYPES, ()


def _mul_operand(e: BinOp) -> BinOp | None:
    """The multiply of a multiply-add `a*b + c`, `c + a*b` or `c - a*b`."""
    b = e.b
    if type(b) is BinOp and b.op is BinOpKind.MUL:
        return b
    a = e.a
    if e.op is BinOpKind.ADD and type(a) is BinOp and a.op is BinOpKind.MUL:
        return a
    return None
