"""The state of code generation inside one LLVM function."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from llvmlite import ir

from compiler.lower.loop_ir import Buffer
from compiler.te.expr import Expr, Var
from compiler.te.traverse import free_vars


@dataclass(frozen=True)
class VecLoop:
    """A vectorized loop (or one chunk of it): `var` takes the values
    `offset, ..., offset + lanes - 1` at once."""

    var: Var
    lanes: int
    offset: int = 0


@dataclass
class ModuleState:
    """What the functions of one module share: the module and a counter for outlined names."""

    module: ir.Module
    vector_bytes: int = 64  # the widest SIMD register; vectorized loops are chunked to it
    outlined: int = 0

    def next_outlined(self) -> int:
        self.outlined += 1
        return self.outlined - 1


@dataclass
class FnContext:
    """Builder, bindings and vector state while emitting one LLVM function.

    `entry` appends to the entry block (stack slots are hoisted there so loops do
    not grow the stack); `builder` is where code goes. `mask` is the set of lanes
    live inside the branch of a vector `Select` (loads outside it must not happen).
    """

    shared: ModuleState
    fn: ir.Function
    builder: ir.IRBuilder
    entry: ir.IRBuilder
    body_block: ir.Block
    env: dict[Var, ir.Value] = field(default_factory=dict)
    buffers: dict[Buffer, ir.Value] = field(default_factory=dict)
    allocas: dict[Buffer, ir.Value] = field(default_factory=dict)
    in_parallel: bool = False
    vec: VecLoop | None = None
    mask: ir.Value | None = None
    # id(expr) -> (expr, varies); the expr is kept so its id is not reused meanwhile
    _depends: dict[int, tuple[Expr, bool]] = field(default_factory=dict)

    @property
    def module(self) -> ir.Module:
        return self.shared.module

    @classmethod
    def start(cls, shared: ModuleState, fn: ir.Function, *, in_parallel: bool) -> FnContext:
        """A context whose builder is at the start of `fn`'s body (after its entry block)."""
        entry = fn.append_basic_block("entry")
        body = fn.append_basic_block("body")
        return cls(
            shared=shared,
            fn=fn,
            builder=ir.IRBuilder(body),
            entry=ir.IRBuilder(entry),
            body_block=body,
            in_parallel=in_parallel,
        )

    def finish(self) -> None:
        """Close the function: entry jumps to the body, the body returns."""
        self.entry.branch(self.body_block)
        self.builder.ret_void()

    def depends(self, e: Expr) -> bool:
        """Whether `e` varies across the lanes of the current vectorized loop."""
        if self.vec is None:
            return False
        hit = self._depends.get(id(e))
        if hit is None:
            hit = self._depends[id(e)] = (e, self.vec.var in free_vars(e))
        return hit[1]

    @contextmanager
    def bind(self, var: Var, value: ir.Value) -> Iterator[None]:
        """`var` holds `value` inside the block (a loop index or an unrolled constant)."""
        old = self.env.get(var)
        self.env[var] = value
        try:
            yield
        finally:
            if old is None:
                del self.env[var]
            else:
                self.env[var] = old

    @contextmanager
    def vectorized(self, vec: VecLoop) -> Iterator[None]:
        old = self.vec
        self.vec, self._depends = vec, {}
        try:
            yield
        finally:
            self.vec, self._depends = old, {}

    @contextmanager
    def masked(self, mask: ir.Value | None) -> Iterator[None]:
        old = self.mask
        self.mask = mask
        try:
            yield
        finally:
            self.mask = old


class CodegenError(ValueError):
    """The loop IR cannot be compiled (a variable outside its loop, an unknown node...)."""
