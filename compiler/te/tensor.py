"""Tensors: placeholders (inputs) and compute stages defined by index lambdas."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from compiler.te.expr import Expr, ExprLike, IterVar, Reduce, TensorRead, Var, const
from compiler.te.kinds import DTYPES, IterKind
from compiler.te.traverse import walk


class TEError(ValueError):
    """A tensor expression is malformed (wrong shape, arity, dtype)."""


@dataclass(frozen=True, eq=False)
class Tensor:
    """The output of one stage. `body is None` marks a placeholder (an input).

    Tensors compare by identity: two placeholders with equal shapes are still
    different inputs. Structural identity of whole computations is the
    workload key of `ComputeDAG`.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    axes: tuple[IterVar, ...] = ()
    body: Expr | None = None
    tag: str = ""
    attrs: tuple[tuple[str, object], ...] = field(default=())

    @property
    def is_placeholder(self) -> bool:
        return self.body is None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @cached_property
    def reduce_axes(self) -> tuple[IterVar, ...]:
        return self.body.axes if isinstance(self.body, Reduce) else ()

    @cached_property
    def inputs(self) -> tuple[Tensor, ...]:
        """Tensors this stage reads, in first-read order, without duplicates."""
        if self.body is None:
            return ()
        seen: dict[int, Tensor] = {}
        for node in walk(self.body):
            if isinstance(node, TensorRead) and id(node.tensor) not in seen:
                seen[id(node.tensor)] = node.tensor
        return tuple(seen.values())

    def attr(self, key: str, default: object = None) -> object:
        return dict(self.attrs).get(key, default)

    def __getitem__(self, indices: ExprLike | IterVar | Sequence[ExprLike | IterVar]) -> Expr:
        idx = tuple(indices) if isinstance(indices, (tuple, list)) else (indices,)
        if len(idx) != len(self.shape):
            raise TEError(
                f"tensor {self.name} has {len(self.shape)} dimensions, indexed with {len(idx)}"
            )
        exprs = tuple(_index(i) for i in idx)
        return TensorRead(self, exprs)

    def __repr__(self) -> str:
        kind = "placeholder" if self.is_placeholder else "compute"
        return f"Tensor({self.name}, {kind}, shape={self.shape}, {self.dtype})"

    def __hash__(self) -> int:
        return id(self)


def _index(i: ExprLike | IterVar) -> Expr:
    if isinstance(i, IterVar):
        return i.var
    e = const(i, "int32") if not isinstance(i, Expr) else i
    if e.dtype not in ("int32", "int64"):
        raise TEError(f"tensor index must be an integer expression, got {e!r} ({e.dtype})")
    return e


def _check_shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    out = tuple(shape)
    for d in out:
        if not isinstance(d, (int,)) or isinstance(d, bool) or d <= 0:
            raise TEError(f"{what}: shape must be positive integers, got {list(out)}")
    return tuple(int(d) for d in out)


def placeholder(shape: Sequence[int], dtype: str = "float32", name: str = "placeholder") -> Tensor:
    """An input tensor of static `shape`."""
    if dtype not in DTYPES:
        raise TEError(f"placeholder {name}: unknown dtype {dtype!r}")
    return Tensor(name, _check_shape(shape, f"placeholder {name}"), dtype)


def compute(
    shape: Sequence[int],
    fcompute: Callable[..., ExprLike],
    name: str = "compute",
    tag: str = "",
    attrs: dict[str, object] | None = None,
) -> Tensor:
    """A stage whose element at index (i0, i1, ...) is `fcompute(i0, i1, ...)`.

    Example:
        >>> A = placeholder((4, 8), name="A")
        >>> B = compute((4, 8), lambda i, j: A[i, j] * 2.0, name="B")
    """
    shp = _check_shape(shape, f"compute {name}")
    names = _arg_names(fcompute, len(shp), name)
    axes = tuple(IterVar(Var(n), d, IterKind.SPATIAL) for n, d in zip(names, shp))
    body = const(fcompute(*[a.var for a in axes]))
    if isinstance(body, Reduce):
        clash = {a.var.name for a in axes} & {r.var.name for r in body.axes}
        if clash:
            raise TEError(f"compute {name}: reduce axis names {sorted(clash)} repeat an index name")
    if isinstance(body, Reduce):
        if any(isinstance(n, Reduce) for n in walk(body.source)):
            raise TEError(f"compute {name}: a reduction may appear only at the top of a body")
    elif any(isinstance(n, Reduce) for n in walk(body)):
        raise TEError(f"compute {name}: a reduction may appear only at the top of a body")
    frozen_attrs = tuple(sorted((attrs or {}).items()))
    return Tensor(name, shp, body.dtype, axes, body, tag, frozen_attrs)


def _arg_names(f: Callable[..., object], ndim: int, name: str) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    if params and params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return [f"i{k}" for k in range(ndim)]
    if len(params) != ndim:
        raise TEError(f"compute {name}: the lambda takes {len(params)} indices, shape has {ndim}")
    names = [p.name for p in params]
    return names if len(set(names)) == ndim else [f"i{k}" for k in range(ndim)]
