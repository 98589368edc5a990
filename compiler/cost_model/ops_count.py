"""Counting the arithmetic of one statement, and collecting its loads, in one walk.

Categories follow Ansor's MathOpCounter (layout.OP_NAMES), with two choices of ours:
- multiply-add is detected: `a * b + c` (or `c - a * b`) counts one mad and
  neither the add nor the multiply (Ansor leaves mad at zero, a to-do there);
- `Cast` counts as an "other" call of its result type (Ansor has no casts in
  its count; here they are the only calls that are not math functions).
The float/int split follows the operands' type; comparisons of floats are float
compares, min/max are compares, `&&`/`||`/`!` on bools are bool ops.
"""

from __future__ import annotations

from compiler.lower.loop_ir import Buffer, Load
from compiler.te.expr import (
    FLOAT_DTYPES,
    BinOp,
    BinOpKind,
    Call,
    Cast,
    Cmp,
    Expr,
    FloatImm,
    IntImm,
    Not,
    Select,
    Var,
)

# indices into the 16 computation counts (layout.OP_NAMES); int = float index + 7
MAD, ADDSUB, MUL, DIVMOD, CMP, MATH, OTHER = range(7)
INT_OFFSET = 7
BOOL_OP, SELECT_OP = 14, 15

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


class OpCounter:
    """Accumulates op counts and (buffer, index) loads over expressions."""

    __slots__ = ("counts", "loads")

    def __init__(self) -> None:
        self.counts = [0] * 16
        self.loads: list[tuple[Buffer, Expr]] = []

    def visit(self, e: Expr) -> bool:
        """Count `e`'s ops; returns whether its value is a float."""
        t = type(e)
        if t is IntImm or t is Var:
            return False
        if t is FloatImm:
            return True
        if t is Load:
            self.loads.append((e.buffer, e.index))  # type: ignore[attr-defined]
            self.visit(e.index)  # type: ignore[attr-defined]
            return e.buffer.dtype in FLOAT_DTYPES  # type: ignore[attr-defined]
        if t is BinOp:
            return self._binop(e)  # type: ignore[arg-type]
        if t is Cmp:
            is_float = self.visit(e.a)  # type: ignore[attr-defined]
            self.visit(e.b)  # type: ignore[attr-defined]
            self.counts[CMP if is_float else CMP + INT_OFFSET] += 1
            return False
        return self._other(e)

    def _binop(self, e: BinOp) -> bool:
        op = e.op
        if op is BinOpKind.AND or op is BinOpKind.OR:
            self.visit(e.a)
            self.visit(e.b)
            self.counts[BOOL_OP] += 1
            return False
        if op is BinOpKind.ADD or op is BinOpKind.SUB:
            mul = _mul_operand(e)
            if mul is not None:
                other = e.b if mul is e.a else e.a
                is_float = self.visit(mul.a)
                self.visit(mul.b)
                self.visit(other)
                self.counts[MAD if is_float else MAD + INT_OFFSET] += 1
                return is_float
        is_float = self.visit(e.a)
        self.visit(e.b)
        slot = _BINOP_SLOT[op]
        self.counts[slot if is_float else slot + INT_OFFSET] += 1
        return is_float

    def _other(self, e: Expr) -> bool:
        if isinstance(e, Select):
            self.visit(e.cond)
            self.visit(e.false_value)
            self.counts[SELECT_OP] += 1
            return self.visit(e.true_value)
        if isinstance(e, Not):
            self.visit(e.a)
            self.counts[BOOL_OP] += 1
            return False
        if isinstance(e, Call):
            is_float = False
            for a in e.args:
                is_float = self.visit(a)
            self.counts[MATH if is_float else MATH + INT_OFFSET] += 1
            return is_float
        if isinstance(e, Cast):
            self.visit(e.value)
            is_float = e.type in FLOAT_DTYPES
            self.counts[OTHER if is_float else OTHER + INT_OFFSET] += 1
            return is_float
        return e.dtype in FLOAT_DTYPES


def _mul_operand(e: BinOp) -> BinOp | None:
    """The multiply of a multiply-add `a*b + c`, `c + a*b` or `c - a*b`."""
    b = e.b
    if type(b) is BinOp and b.op is BinOpKind.MUL:
        return b
    a = e.a
    if e.op is BinOpKind.ADD and type(a) is BinOp and a.op is BinOpKind.MUL:
        return a
    return None
