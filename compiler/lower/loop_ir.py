"""The loop IR: what lowering produces and code generation consumes.

A `PrimFunc` is one kernel: its parameters are flat row-major buffers and its
body a tree of statements. Expressions are the tensor-expression nodes of
`compiler.te.expr` with `TensorRead`/`Reduce` replaced by `Load` of a flat
index. All loops start at 0 and have a constant extent.

Contract with code generation:
- Integer index arithmetic may be carried out in 64 bits; `//` and `%` are
  floor division and floor modulo.
- A `Load` inside a branch of a `Select` is only performed when that branch is
  taken (its index may be out of bounds otherwise: padding reads).
- `For.kind` is a request: PARALLEL runs the iterations on several threads
  (nested parallel loops run serially), VECTORIZED evaluates the body for all
  iterations at once in SIMD registers, UNROLLED repeats the body `extent`
  times with the loop variable a constant.
- Parameter buffers are 64-byte aligned and do not alias each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from math import prod

from compiler.te.expr import Expr, Var
from compiler.te.node_hash import hash_structurally


class Scope(enum.Enum):
    GLOBAL = "global"  # a kernel parameter or a full-size intermediate
    LOCAL = "local"  # a small per-iteration scratch buffer (attached stage, write cache)


@dataclass(frozen=True, eq=False)
class Buffer:
    """A flat region of memory holding `shape` elements in row-major order."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    scope: Scope = Scope.GLOBAL

    @cached_property
    def size(self) -> int:
        return prod(self.shape)

    @cached_property
    def strides(self) -> tuple[int, ...]:
        out, acc = [], 1
        for d in reversed(self.shape):
            out.append(acc)
            acc *= d
        return tuple(reversed(out))

    def __repr__(self) -> str:
        return f"{self.name}[{'x'.join(map(str, self.shape))}]"

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True)
class Load(Expr):
    """`buffer[index]` with a flat element index."""

    buffer: Buffer
    index: Expr

    @property
    def dtype(self) -> str:
        return self.buffer.dtype

    def sub_exprs(self) -> tuple[Expr, ...]:
        return (self.index,)

    def with_sub_exprs(self, kids: tuple[Expr, ...]) -> Load:
        return Load(self.buffer, kids[0])

    def __repr__(self) -> str:
        return f"{self.buffer.name}[{self.index!r}]"


hash_structurally(Load)


class ForKind(enum.Enum):
    SERIAL = "serial"
    PARALLEL = "parallel"
    VECTORIZED = "vectorized"
    UNROLLED = "unrolled"


class Stmt:
    __slots__ = ()


@dataclass(frozen=True)
class For(Stmt):
    var: Var
    extent: int
    kind: ForKind
    body: Stmt


@dataclass(frozen=True)
class Seq(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True)
class Store(Stmt):
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(frozen=True)
class IfThenElse(Stmt):
    cond: Expr
    then_case: Stmt
    else_case: Stmt | None = None


@dataclass(frozen=True)
class Allocate(Stmt):
    """Scratch memory for `buffer`, live while `body` runs."""

    buffer: Buffer
    body: Stmt


@dataclass(frozen=True)
class PrimFunc:
    """One kernel: `void name(float* p0, float* p1, ...)` over flat buffers."""

    name: str
    params: tuple[Buffer, ...]
    body: Stmt


def seq(*stmts: Stmt | None) -> Stmt:
    """A sequence without empty or nested sequences."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def format_stmt(s: Stmt, indent: int = 0) -> str:
    """Readable text of a statement tree (for dumps, sketches and golden tests)."""
    pad = "  " * indent
    match s:
        case For(var, extent, kind, body):
            ann = "" if kind is ForKind.SERIAL else f" {kind.value}"
            return f"{pad}for {var.name} in 0..{extent}{ann}:\n" + format_stmt(body, indent + 1)
        case Seq(stmts):
            return "".join(format_stmt(x, indent) for x in stmts)
        case Store(buf, index, value):
            return f"{pad}{buf.name}[{index!r}] = {value!r}\n"
        case IfThenElse(cond, then_case, else_case):
            out = f"{pad}if {cond!r}:\n" + format_stmt(then_case, indent + 1)
            if else_case is not None:
                out += f"{pad}else:\n" + format_stmt(else_case, indent + 1)
            return out
        case Allocate(buf, body):
            return f"{pad}alloc {buf.name}[{buf.size}] {buf.scope.value}\n" + format_stmt(
                body, indent
            )
    raise TypeError(f"not a statement: {s!r}")


def format_func(f: PrimFunc) -> str:
    params = ", ".join(repr(p) for p in f.params)
    return f"def {f.name}({params}):\n" + format_stmt(f.body, 1)
