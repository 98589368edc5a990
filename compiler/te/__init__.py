"""Tensor expressions: write a computation once, schedule it many ways.

    >>> from compiler import te
    >>> A = te.placeholder((64, 32), name="A")
    >>> B = te.placeholder((32, 48), name="B")
    >>> k = te.reduce_axis(32, name="k")
    >>> C = te.compute((64, 48), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
"""

from compiler.te.expr import (
    BinOp,
    BinOpKind,
    Call,
    Cast,
    Cmp,
    CmpKind,
    Expr,
    FloatImm,
    IntImm,
    IterKind,
    IterVar,
    MathFunc,
    Not,
    Reduce,
    ReduceKind,
    Select,
    TensorRead,
    Var,
    cast,
    ceil,
    const,
    equal,
    erf,
    exp,
    fabs,
    floor,
    if_then_else,
    log,
    logical_and,
    logical_or,
    max,
    max_expr,
    min,
    min_expr,
    not_equal,
    power,
    reduce_axis,
    rsqrt,
    select,
    sigmoid,
    sqrt,
    substitute,
    sum,
    tanh,
    walk,
)
from compiler.te.tensor import TEError, Tensor, compute, placeholder

__all__ = [name for name in dir() if not name.startswith("_")]
