"""Scalar expression nodes of the tensor-expression language.

Every node is an immutable value (frozen dataclass): structural equality and
hashing, so expressions can key dictionaries and caches. Python operators build
nodes (`a + b`, `a < b`); `==` stays structural equality, use `equal(a, b)` for
the comparison node. Python numbers are converted to constants of the other
operand's dtype.
"""

from __future__ import annotations

import enum
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from compiler.te.tensor import Tensor

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)


class BinOpKind(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"  # float division
    FLOORDIV = "//"  # integer floor division
    FLOORMOD = "%"  # integer floor modulo (sign of the divisor)
    MIN = "min"
    MAX = "max"
    AND = "&&"
    OR = "||"


class CmpKind(enum.Enum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="


class MathFunc(enum.Enum):
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    RSQRT = "rsqrt"
    TANH = "tanh"
    ERF = "erf"
    SIGMOID = "sigmoid"
    POW = "pow"
    ABS = "fabs"
    FLOOR = "floor"
    CEIL = "ceil"


class ReduceKind(enum.Enum):
    SUM = "sum"
    MAX = "max"
    MIN = "min"


class IterKind(enum.Enum):
    SPATIAL = "spatial"
    REDUCE = "reduce"


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
for _name in (
    "add",
    "radd",
    "sub",
    "rsub",
    "mul",
    "rmul",
    "floordiv",
    "rfloordiv",
    "mod",
    "rmod",
    "neg",
    "lt",
    "le",
    "gt",
    "ge",
):
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


def _cached_hash(self: Expr) -> int:
    """Structural hash, computed once per node (trees are hashed often by the simplifier;
    about a fifth of lowering time went to this function when it used a generator and
    a KeyError for each new node)."""
    d = self.__dict__
    h = d.get("_hash")
    if h is None:
        cls = type(self)
        fields = _FIELDS.get(cls) or _fields_getter(cls)
        h = d["_hash"] = hash((cls.__name__, fields(self)))
    return h


def _state_without_hash(self: Expr) -> dict:
    """Pickled state minus the cached hash: string hashes differ between processes."""
    return {k: v for k, v in self.__dict__.items() if k != "_hash"}


_FIELDS: dict[type, Callable[[Expr], tuple]] = {}


def _fields_getter(cls: type) -> Callable[[Expr], tuple]:
    """A function giving the tuple of a node's field values (subclasses, such as the
    loop IR's nodes, get theirs on first use)."""
    names = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if len(names) > 1:
        getter: Callable[[Expr], tuple] = operator.attrgetter(*names)
    else:  # attrgetter of one name gives the value, not a tuple
        getter = lambda x: tuple(getattr(x, n) for n in names)
    _FIELDS[cls] = getter
    return getter


for _cls in (Var, IntImm, FloatImm, BinOp, Cmp, Not, Select, Cast, Call, TensorRead, Reduce):
    _cls.__hash__ = _cached_hash  # type: ignore[method-assign]
    _cls.__getstate__ = _state_without_hash  # type: ignore[method-assign,assignment]


# ---------------------------------------------------------------- constructors


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


def _coerce_pair(a: ExprLike, b: ExprLike) -> tuple[Expr, Expr]:
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
    x, y = _coerce_pair(a, b)
    if op in (BinOpKind.FLOORDIV, BinOpKind.FLOORMOD) and x.dtype not in INT_DTYPES:
        raise TypeError(f"'{op.value}' needs integer operands, got {x.dtype}")
    if op is BinOpKind.DIV and x.dtype not in FLOAT_DTYPES:
        raise TypeError("'/' is float division; use '//' for integers")
    return BinOp(op, x, y)


def cmp(op: CmpKind, a: ExprLike, b: ExprLike) -> Expr:
    x, y = _coerce_pair(a, b)
    return Cmp(op, x, y)


def equal(a: ExprLike, b: ExprLike) -> Expr:
    return cmp(CmpKind.EQ, a, b)


def not_equal(a: ExprLike, b: ExprLike) -> Expr:
    return cmp(CmpKind.NE, a, b)


def _check_conds(name: str, conds: tuple[Expr, ...]) -> None:
    if not conds:
        raise TypeError(f"{name}() needs at least one condition")
    for c in conds:
        if c.dtype != "bool":
            raise TypeError(f"{name}() takes bool conditions, got {c!r} ({c.dtype})")


def logical_and(*conds: Expr) -> Expr:
    _check_conds("logical_and", conds)
    out = conds[0]
    for c in conds[1:]:
        out = BinOp(BinOpKind.AND, out, c)
    return out


def logical_or(*conds: Expr) -> Expr:
    _check_conds("logical_or", conds)
    out = conds[0]
    for c in conds[1:]:
        out = BinOp(BinOpKind.OR, out, c)
    return out


def min_expr(a: ExprLike, b: ExprLike) -> Expr:
    return binop(BinOpKind.MIN, a, b)


def max_expr(a: ExprLike, b: ExprLike) -> Expr:
    return binop(BinOpKind.MAX, a, b)


def select(cond: Expr, true_value: ExprLike, false_value: ExprLike) -> Expr:
    """`cond ? t : f` (TVM's if_then_else); the padding idiom."""
    if cond.dtype != "bool":
        raise TypeError(f"select condition must be bool, got {cond.dtype}")
    t, f = _coerce_pair(true_value, false_value)
    return Select(cond, t, f)


if_then_else = select


def cast(dtype: str, value: ExprLike) -> Expr:
    if dtype not in DTYPES:
        raise TypeError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    v = const(value)
    return v if v.dtype == dtype else Cast(dtype, v)


def _float_arg(name: str, x: ExprLike) -> Expr:
    e = const(x, "float32") if not isinstance(x, Expr) else x
    if e.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}() needs a float argument, got {e.dtype}")
    return e


def _math(func: MathFunc):
    def build(x: ExprLike) -> Expr:
        return Call(func, (_float_arg(func.value, x),))

    build.__name__ = func.value
    build.__doc__ = f"Elementwise {func.value}(x) on a float expression."
    return build


exp = _math(MathFunc.EXP)
log = _math(MathFunc.LOG)
sqrt = _math(MathFunc.SQRT)
rsqrt = _math(MathFunc.RSQRT)
tanh = _math(MathFunc.TANH)
erf = _math(MathFunc.ERF)
sigmoid = _math(MathFunc.SIGMOID)
fabs = _math(MathFunc.ABS)
floor = _math(MathFunc.FLOOR)
ceil = _math(MathFunc.CEIL)


def power(x: ExprLike, y: ExprLike) -> Expr:
    a, b = _coerce_pair(x, y)
    return Call(MathFunc.POW, (_float_arg("pow", a), _float_arg("pow", b)))


_AXIS_COUNTER = [0]


def reduce_axis(extent: int, name: str | None = None) -> IterVar:
    """A reduction axis over [0, extent)."""
    if not isinstance(extent, int) or extent <= 0:
        raise ValueError(f"reduce_axis extent must be a positive int, got {extent!r}")
    if name is None:
        _AXIS_COUNTER[0] += 1
        name = f"r{_AXIS_COUNTER[0]}"
    return IterVar(Var(name), extent, IterKind.REDUCE)


def _reducer(kind: ReduceKind):
    def build(source: ExprLike, axis: IterVar | list[IterVar] | tuple[IterVar, ...]) -> Expr:
        axes = (axis,) if isinstance(axis, IterVar) else tuple(axis)
        if not axes or any(a.kind is not IterKind.REDUCE for a in axes):
            raise ValueError(f"{kind.value}() needs reduce axes made with reduce_axis()")
        return Reduce(kind, const(source), axes)

    build.__name__ = kind.value
    build.__doc__ = f"{kind.value} of `source` over the reduce axes `axis`."
    return build


sum = _reducer(ReduceKind.SUM)
max = _reducer(ReduceKind.MAX)
min = _reducer(ReduceKind.MIN)
