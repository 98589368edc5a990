"""Scalar expression nodes of the tensor-expression language and the Python operators
that build them.

Every node is an immutable value (frozen dataclass): structural equality and
hashing, so expressions can key dictionaries and caches. Python operators build
nodes (`a + b`, `a < b`); `==` stays structural equality, use `equal(a, b)` for
the comparison node. Python numbers are converted to constants of the other
operand's dtype. Named constructors (`select`, `cast`, `exp`, `sum`, ...) are in
`compiler.te.constructors`; the dtypes and operator kinds in `compiler.te.kinds`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from compiler.te.kinds import (
    DTYPES,
    FLOAT_DTYPES,
    INT_DTYPES,
    BinOpKind,
    CmpKind,
    IterKind,
    MathFunc,
    ReduceKind,
)
from compiler.te.node_hash import hash_structurally

if TYPE_CHECKING:
    from compiler.te.tensor import Tensor

ExprLike = Union["Expr", int, float, bool]


class Expr:
    """Base of all scalar expressions; operators build new nodes."""

    __slots__ = ()

    @property
    def dtype(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def __add__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.ADD, self, other)

    def __radd__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.ADD, other, self)

    def __sub__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.SUB, self, other)

    def __rsub__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.SUB, other, self)

    def __mul__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.MUL, self, other)

    def __rmul__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.MUL, other, self)

    def __truediv__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.DIV, self, other)

    def __rtruediv__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.DIV, other, self)

    def __floordiv__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.FLOORDIV, self, other)

    def __rfloordiv__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.FLOORDIV, other, self)

    def __mod__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.FLOORMOD, self, other)

    def __rmod__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.FLOORMOD, other, self)

    def __neg__(self) -> Expr:
        return binop(BinOpKind.SUB, const(0, self.dtype), self)

    def __lt__(self, other: ExprLike) -> Expr:
        return cmp(CmpKind.LT, self, other)

    def __le__(self, other: ExprLike) -> Expr:
        return cmp(CmpKind.LE, self, other)

    def __gt__(self, other: ExprLike) -> Expr:
        return cmp(CmpKind.GT, self, other)

    def __ge__(self, other: ExprLike) -> Expr:
        return cmp(CmpKind.GE, self, other)

    def __and__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.AND, self, other)

    def __or__(self, other: ExprLike) -> Expr:
        return binop(BinOpKind.OR, self, other)

    def __invert__(self) -> Expr:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError("an expression has no truth value; use select() or logical_and()")


@dataclass(frozen=True)
class Var(Expr):
    """A named integer variable: a loop index or a compute axis."""

    name: str
    type: str = "int32"

    @property
    def dtype(self) -> str:
        return self.type

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class IntImm(Expr):
    value: int
    type: str = "int32"

    @property
    def dtype(self) -> str:
        return self.type

    def __repr__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class FloatImm(Expr):
    value: float
    type: str = "float32"

    @property
    def dtype(self) -> str:
        return self.type

    def __repr__(self) -> str:
        return repr(self.value) if self.type == "float32" else f"{self.value!r}:{self.type}"


@dataclass(frozen=True)
class BinOp(Expr):
    op: BinOpKind
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:
        return self.a.dtype

    def __repr__(self) -> str:
        if self.op in (BinOpKind.MIN, BinOpKind.MAX):
            return f"{self.op.value}({self.a!r}, {self.b!r})"
        return f"({self.a!r} {self.op.value} {self.b!r})"


@dataclass(frozen=True)
class Cmp(Expr):
    op: CmpKind
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:
        return "bool"

    def __repr__(self) -> str:
        return f"({self.a!r} {self.op.value} {self.b!r})"


@dataclass(frozen=True)
class Not(Expr):
    a: Expr

    @property
    def dtype(self) -> str:
        return "bool"

    def __repr__(self) -> str:
        return f"!{self.a!r}"


@dataclass(frozen=True)
class Select(Expr):
    """`cond ? true_value : false_value`; both branches may be evaluated."""

    cond: Expr
    true_value: Expr
    false_value: Expr

    @property
    def dtype(self) -> str:
        return self.true_value.dtype

    def __repr__(self) -> str:
        return f"select({self.cond!r}, {self.true_value!r}, {self.false_value!r})"


@dataclass(frozen=True)
class Cast(Expr):
    type: str
    value: Expr

    @property
    def dtype(self) -> str:
        return self.type

    def __repr__(self) -> str:
        return f"{self.type}({self.value!r})"


@dataclass(frozen=True)
class Call(Expr):
    func: MathFunc
    args: tuple[Expr, ...]

    @property
    def dtype(self) -> str:
        return self.args[0].dtype

    def __repr__(self) -> str:
        return f"{self.func.value}({', '.join(map(repr, self.args))})"


@dataclass(frozen=True)
class IterVar:
    """An axis of a compute: its variable, its extent [0, extent) and its kind."""

    var: Var
    extent: int
    kind: IterKind = IterKind.SPATIAL

    def __repr__(self) -> str:
        return f"{self.var.name}:{self.extent}{'r' if self.kind is IterKind.REDUCE else ''}"


def _delegate_to_var(name: str):
    def method(self: IterVar, *args: ExprLike) -> Expr:
        return getattr(self.var, name)(*args)

    return method


# an axis can be used in index arithmetic directly, as in TVM (`h + ry`)
_ARITHMETIC = ("add", "sub", "mul", "floordiv", "mod")
for _name in (*_ARITHMETIC, *(f"r{n}" for n in _ARITHMETIC), "neg", "lt", "le", "gt", "ge"):
    setattr(IterVar, f"__{_name}__", _delegate_to_var(f"__{_name}__"))


@dataclass(frozen=True)
class TensorRead(Expr):
    """`tensor[indices]`: a read of another stage's output or of an input."""

    tensor: Tensor
    indices: tuple[Expr, ...]

    @property
    def dtype(self) -> str:
        return self.tensor.dtype

    def __repr__(self) -> str:
        return f"{self.tensor.name}[{', '.join(map(repr, self.indices))}]"


@dataclass(frozen=True)
class Reduce(Expr):
    """A commutative reduction of `source` over `axes`; only at the top of a body."""

    combiner: ReduceKind
    source: Expr
    axes: tuple[IterVar, ...]

    @property
    def dtype(self) -> str:
        return self.source.dtype

    def __repr__(self) -> str:
        axes = ", ".join(repr(a) for a in self.axes)
        return f"{self.combiner.value}({self.source!r}, axis=[{axes}])"


hash_structurally(Var, IntImm, FloatImm, BinOp, Cmp, Not, Select, Cast, Call, TensorRead, Reduce)


# ------------------------------------------------- the coercion behind the operators


def const(value: ExprLike, dtype: str | None = None) -> Expr:
    """A constant of `dtype` (inferred from the Python type when omitted)."""
    if isinstance(value, IterVar):
        value = value.var
    if isinstance(value, Expr):
        return value if dtype is None or value.dtype == dtype else Cast(dtype, value)
    if dtype is None:
        dtype = (
            "bool" if isinstance(value, bool) else "int32" if isinstance(value, int) else "float32"
        )
    if dtype in FLOAT_DTYPES:
        return FloatImm(float(value), dtype)
    if dtype == "bool":
        return IntImm(int(bool(value)), "bool")
    if dtype in INT_DTYPES:
        if not float(value).is_integer():
            raise TypeError(f"cannot use {value!r} as an {dtype} constant")
        return IntImm(int(value), dtype)
    raise TypeError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")


def coerce_pair(a: ExprLike, b: ExprLike) -> tuple[Expr, Expr]:
    """Two operands as expressions of one dtype (numbers take the other's dtype)."""
    if isinstance(a, Expr) and type(b) is int:  # index arithmetic (`i * 4`): the common case
        dtype = a.dtype
        if dtype in INT_DTYPES:
            return a, _int_const(b, dtype)
    a = a.var if isinstance(a, IterVar) else a
    b = b.var if isinstance(b, IterVar) else b
    if isinstance(a, Expr) and not isinstance(b, Expr):
        return a, const(b, a.dtype)
    if isinstance(b, Expr) and not isinstance(a, Expr):
        return const(a, b.dtype), b
    if not isinstance(a, Expr) and not isinstance(b, Expr):
        return const(a), const(b)
    assert isinstance(a, Expr) and isinstance(b, Expr)
    if a.dtype != b.dtype:
        raise TypeError(f"dtype mismatch: {a!r} is {a.dtype}, {b!r} is {b.dtype}; add a cast")
    return a, b


@functools.lru_cache(maxsize=4096)
def _int_const(value: int, dtype: str) -> IntImm:
    """One shared node per integer constant of index arithmetic (its hash computed once)."""
    return IntImm(value, dtype)


def binop(op: BinOpKind, a: ExprLike, b: ExprLike) -> Expr:
    x, y = coerce_pair(a, b)
    if op in (BinOpKind.FLOORDIV, BinOpKind.FLOORMOD) and x.dtype not in INT_DTYPES:
        raise TypeError(f"'{op.value}' needs integer operands, got {x.dtype}")
    if op is BinOpKind.DIV and x.dtype not in FLOAT_DTYPES:
        raise TypeError("'/' is float division; use '//' for integers")
    return BinOp(op, x, y)


def cmp(op: CmpKind, a: ExprLike, b: ExprLike) -> Expr:
    x, y = coerce_pair(a, b)
    return Cmp(op, x, y)
