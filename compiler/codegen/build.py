"""Compile a `PrimFunc` to host object code, packaged as a picklable `Artifact`.

Builder worker processes call `build`; the runner process hands the artifact to
`compiler.runtime.load`. The object code is plain bytes so it crosses process
boundaries by pickling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import llvmlite.binding as llvm

from compiler.codegen.llvm_codegen import emit_module
from compiler.codegen.target import target_machine
from compiler.lower.loop_ir import PrimFunc
from compiler.target import Target, host_target, init_llvm


@dataclass(frozen=True)
class ParamSpec:
    """What the kernel expects for one argument: a C-contiguous array of this shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Artifact:
    """A compiled kernel: object code, the entry symbol, its parameters, where it runs."""

    object_code: bytes
    entry: str
    params: tuple[ParamSpec, ...]
    target: str
    compile_s: float


def build(func: PrimFunc, *, target: Target | None = None, opt_level: int = 3) -> Artifact:
    """Compile `func` to an object file for `target` (the host CPU by default).

    Example:
        >>> art = build(func)                    # doctest: +SKIP
        >>> kernel = compiler.runtime.load(art)  # doctest: +SKIP
        >>> kernel(a, b, c)                      # doctest: +SKIP
    """
    start = time.perf_counter()
    target = target or host_target()
    mod = _optimized_module(func, target, opt_level)
    obj = target_machine(target, opt_level).emit_object(mod)
    params = tuple(ParamSpec(p.name, tuple(p.shape), p.dtype) for p in func.params)
    elapsed = time.perf_counter() - start
    return Artifact(bytes(obj), func.name, params, target.describe(), elapsed)


def llvm_ir(func: PrimFunc, optimized: bool = False, *, target: Target | None = None) -> str:
    """The LLVM IR text of `func`, as emitted or after the O3 pipeline (dumps, golden tests)."""
    target = target or host_target()
    if optimized:
        return str(_optimized_module(func, target, 3))
    return str(emit_module([func], target))


def assembly(func: PrimFunc, *, target: Target | None = None) -> str:
    """The optimized machine code of `func` as assembly text, for inspection."""
    target = target or host_target()
    return target_machine(target, 3).emit_assembly(_optimized_module(func, target, 3))


def _optimized_module(func: PrimFunc, target: Target, opt_level: int) -> llvm.ModuleRef:
    init_llvm()
    mod = llvm.parse_assembly(str(emit_module([func], target)))
    mod.verify()
    if opt_level > 0:
        tm = target_machine(target, opt_level)
        pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
    return mod
