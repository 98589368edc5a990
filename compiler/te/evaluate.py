"""Reference interpreter: compute every stage of a tensor expression with numpy.

It is the oracle for op definitions, independent of scheduling and codegen, so
it stays simple rather than fast. A stage's body is evaluated once over its
whole index grid with broadcasting: spatial axis k is `arange(extent)` laid
along grid dimension k, reduce axes are extra trailing dimensions that
np.sum / np.max / np.min then remove.

Semantics it pins down:
- `//` and `%` are floor division and floor modulo (sign of the divisor);
- integer expressions are evaluated in int64, so index arithmetic cannot
  overflow here; float expressions in their own dtype, math calls in float64
  (then rounded), float sums accumulate in float64; every stage's result is
  returned in the stage's dtype;
- a read is checked against the tensor's bounds only where its value is used:
  inside `select` each branch is guarded by its side of the condition, so an
  out-of-range read in the unselected branch is fine (padding, concat), while
  one that would be used raises `EvaluateError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

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
from compiler.te.kinds import BinOpKind, CmpKind, MathFunc, ReduceKind
from compiler.te.tensor import TEError, Tensor

# Largest index grid (elements) evaluated at once; bigger stages go in chunks.
MAX_GRID_ELEMENTS = 1 << 22

_EVAL_DTYPE: dict[str, type[np.generic]] = {
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int64,  # index arithmetic in int64: no overflow in the oracle
    "int64": np.int64,
    "int8": np.int64,
    "uint8": np.int64,
    "int16": np.int64,
    "uint16": np.int64,
    "uint32": np.int64,
    "bool": np.bool_,
}
_STORE_DTYPE: dict[str, type[np.generic]] = {
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "bool": np.bool_,
}

NumpyFn = Callable[..., Any]  # a ufunc or a function of arrays

_BINOPS: dict[BinOpKind, NumpyFn] = {
    BinOpKind.ADD: np.add,
    BinOpKind.SUB: np.subtract,
    BinOpKind.MUL: np.multiply,
    BinOpKind.DIV: np.true_divide,
    BinOpKind.FLOORDIV: np.floor_divide,  # floor semantics, like the IR
    BinOpKind.FLOORMOD: np.mod,  # result has the divisor's sign
    BinOpKind.MIN: np.minimum,
    BinOpKind.MAX: np.maximum,
    BinOpKind.AND: np.logical_and,
    BinOpKind.OR: np.logical_or,
}

_CMPS: dict[CmpKind, NumpyFn] = {
    CmpKind.LT: np.less,
    CmpKind.LE: np.less_equal,
    CmpKind.GT: np.greater,
    CmpKind.GE: np.greater_equal,
    CmpKind.EQ: np.equal,
    CmpKind.NE: np.not_equal,
}

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in the two-sided form that never overflows exp."""
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


_MATH: dict[MathFunc, NumpyFn] = {
    MathFunc.EXP: np.exp,
    MathFunc.LOG: np.log,
    MathFunc.SQRT: np.sqrt,
    MathFunc.RSQRT: lambda x: 1.0 / np.sqrt(x),
    MathFunc.TANH: np.tanh,
    MathFunc.ERF: _erf,
    MathFunc.SIGMOID: _sigmoid,
    MathFunc.POW: np.power,
    MathFunc.ABS: np.abs,
    MathFunc.FLOOR: np.floor,
    MathFunc.CEIL: np.ceil,
    MathFunc.SIN: np.sin,
    MathFunc.COS: np.cos,
    MathFunc.TAN: np.tan,
    MathFunc.ASIN: np.arcsin,
    MathFunc.ACOS: np.arccos,
    MathFunc.ATAN: np.arctan,
    MathFunc.SINH: np.sinh,
    MathFunc.COSH: np.cosh,
    MathFunc.ASINH: np.arcsinh,
    MathFunc.ACOSH: np.arccosh,
    MathFunc.ATANH: np.arctanh,
}

_REDUCERS: dict[ReduceKind, NumpyFn] = {
    ReduceKind.SUM: np.sum,
    ReduceKind.MAX: np.max,
    ReduceKind.MIN: np.min,
}

Value = np.ndarray | np.generic
Mask = np.ndarray | None


class EvaluateError(TEError):
    """The reference interpreter cannot evaluate a computation (missing input, bad read)."""


def evaluate(outputs: Sequence[Tensor], inputs: Mapping[Tensor, np.ndarray]) -> list[np.ndarray]:
    """Compute `outputs` from placeholder values with numpy, as the oracle for op tests.

    Stages are evaluated once each, in dependency order. A value given in
    `inputs` for a compute stage replaces that stage.

    Example:
        >>> evaluate([C], {A: np.ones((64, 32), "f4"), B: np.ones((32, 48), "f4")})
    """
    memo: dict[Tensor, np.ndarray] = {t: _input_value(t, v) for t, v in inputs.items()}
    with np.errstate(all="ignore"):  # unselected branches may divide by 0, overflow, ...
        for stage in _topological_order(outputs, memo):
            memo[stage] = _evaluate_stage(stage, memo)
    return [memo[t] for t in outputs]


def _input_value(tensor: Tensor, value: np.ndarray) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != tensor.shape:
        raise EvaluateError(
            f"input {tensor.name}: got shape {array.shape}, the tensor has {tensor.shape}"
        )
    return array.astype(_STORE_DTYPE[tensor.dtype], copy=False)


def _topological_order(outputs: Sequence[Tensor], known: Mapping[Tensor, object]) -> list[Tensor]:
    """Stages still to compute, producers before consumers (iterative post-order DFS)."""
    order: list[Tensor] = []
    visited: set[Tensor] = set(known)
    stack: list[tuple[Tensor, bool]] = [(t, False) for t in reversed(outputs)]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if tensor in visited:
            continue
        visited.add(tensor)
        if tensor.is_placeholder:
            raise EvaluateError(f"no value given for placeholder {tensor.name} {tensor.shape}")
        stack.append((tensor, True))
        stack.extend((t, False) for t in reversed(tensor.inputs) if t not in visited)
    return order


def _evaluate_stage(stage: Tensor, memo: Mapping[Tensor, np.ndarray]) -> np.ndarray:
    """The stage's full output, evaluated in chunks of its largest spatial axis."""
    _check_axis_names(stage)
    out = np.empty(stage.shape, dtype=_STORE_DTYPE[stage.dtype])
    for region, env in _chunks(stage):
        out[region] = _evaluate_body(stage, env, memo)
    return out


def _check_axis_names(stage: Tensor) -> None:
    names = [a.var.name for a in stage.axes + stage.reduce_axes]
    if len(set(names)) != len(names):
        raise EvaluateError(f"stage {stage.name}: axis names are not unique: {names}")


def _chunks(stage: Tensor) -> Iterator[tuple[tuple[slice, ...], dict[Var, np.ndarray]]]:
    """(output region, axis variable -> index array) for each chunk of the index grid."""
    axes = stage.axes + stage.reduce_axes
    if stage.ndim == 0:
        yield (), {a.var: _axis_array(0, a.extent, k, len(axes)) for k, a in enumerate(axes)}
        return
    chunk_axis = max(range(stage.ndim), key=lambda k: axes[k].extent)
    extent = axes[chunk_axis].extent
    rows_per_chunk = max(1, MAX_GRID_ELEMENTS * extent // math.prod(a.extent for a in axes))
    for start in range(0, extent, rows_per_chunk):
        stop = min(start + rows_per_chunk, extent)
        env = {}
        for k, axis in enumerate(axes):
            lo, hi = (start, stop) if k == chunk_axis else (0, axis.extent)
            env[axis.var] = _axis_array(lo, hi, k, len(axes))
        region = tuple(
            slice(start, stop) if k == chunk_axis else slice(None) for k in range(stage.ndim)
        )
        yield region, env


def _axis_array(lo: int, hi: int, k: int, ndim: int) -> np.ndarray:
    """arange(lo, hi) laid along grid dimension k of an ndim-dimensional grid."""
    shape = [1] * ndim
    shape[k] = hi - lo
    return np.arange(lo, hi, dtype=np.int64).reshape(shape)


def _evaluate_body(
    stage: Tensor, env: dict[Var, np.ndarray], memo: Mapping[Tensor, np.ndarray]
) -> np.ndarray:
    """One chunk of a stage: the body over the grid, reduce axes summed away."""
    body = stage.body
    assert body is not None
    grid = tuple(index.size for index in env.values())  # env is in axis order
    ev = _Evaluator(env, memo, stage.name)
    if not isinstance(body, Reduce):
        return np.broadcast_to(ev.eval(body, None), grid)
    source = np.broadcast_to(ev.eval(body.source, None), grid)
    trailing = tuple(range(stage.ndim, len(grid)))
    if body.combiner is ReduceKind.SUM and body.dtype in ("float32", "float64"):
        return np.asarray(np.sum(source, axis=trailing, dtype=np.float64))
    return np.asarray(_REDUCERS[body.combiner](source, axis=trailing))


class _Evaluator:
    """Evaluates scalar expressions over an index grid; `mask` marks where a value is used."""

    def __init__(self, env: dict[Var, np.ndarray], memo: Mapping[Tensor, np.ndarray], stage: str):
        self.env = env
        self.memo = memo
        self.stage = stage

    def eval(self, e: Expr, mask: Mask) -> Value:
        match e:
            case Var():
                return self._var(e)
            case IntImm(value, dtype) | FloatImm(value, dtype):
                return _EVAL_DTYPE[dtype](value)
            case BinOp(op, a, b):
                return _as(_BINOPS[op](self.eval(a, mask), self.eval(b, mask)), e.dtype)
            case Cmp(op, a, b):
                return _CMPS[op](self.eval(a, mask), self.eval(b, mask))
            case Not(a):
                return np.logical_not(self.eval(a, mask))
            case Select(cond, t, f):
                return self._select(e, cond, t, f, mask)
            case Cast(dtype, a):
                return _as(self.eval(a, mask), dtype)
            case Call(func, args):
                values = [np.asarray(self.eval(a, mask), np.float64) for a in args]
                return _as(_MATH[func](*values), e.dtype)
            case TensorRead(tensor, indices):
                return self._read(tensor, indices, mask)
            case Reduce():
                raise EvaluateError(f"stage {self.stage}: a reduction inside an expression")
        raise EvaluateError(f"stage {self.stage}: cannot evaluate {type(e).__name__} {e!r}")

    def _var(self, v: Var) -> Value:
        if v not in self.env:
            raise EvaluateError(f"stage {self.stage}: {v.name} is not an axis of this stage")
        return self.env[v]

    def _select(self, e: Expr, cond: Expr, t: Expr, f: Expr, mask: Mask) -> Value:
        c = np.asarray(self.eval(cond, mask), dtype=bool)
        true_value = self.eval(t, c if mask is None else mask & c)
        false_value = self.eval(f, ~c if mask is None else mask & ~c)
        return _as(np.where(c, true_value, false_value), e.dtype)

    def _read(self, tensor: Tensor, indices: tuple[Expr, ...], mask: Mask) -> Value:
        array = self.memo[tensor]
        clipped = []
        for dim, (index_expr, extent) in enumerate(zip(indices, tensor.shape)):
            index = np.asarray(self.eval(index_expr, mask), dtype=np.int64)
            outside = (index < 0) | (index >= extent)
            if mask is not None:
                outside = outside & mask
            if np.any(outside):
                bad = int(np.broadcast_to(index, outside.shape)[outside].flat[0])
                raise EvaluateError(
                    f"stage {self.stage}: reads {tensor.name} {tensor.shape} at index {bad} "
                    f"in dimension {dim}: out of bounds"
                )
            clipped.append(np.clip(index, 0, extent - 1))
        return array[tuple(clipped)]


def _as(value: Value, dtype: str) -> Value:
    return np.asarray(value).astype(_EVAL_DTYPE[dtype], copy=False)
