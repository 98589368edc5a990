"""Compile a `PrimFunc` to host object code, packaged as a picklable `Artifact`.

Builder worker processes call `build`; the runner process hands the artifact to
`compiler.runtime.load`. The object code is plain bytes so it crosses process
boundaries by pickling. `build(func, pic=True)` and `build_sequence` make the
position-independent objects of a shared library (models/artifact links them):
the same optimized IR as the in-process build, only addressed differently.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import llvmlite.binding as llvm
from llvmlite import ir

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


def build(
    func: PrimFunc, *, target: Target | None = None, opt_level: int = 3, pic: bool = False
) -> Artifact:
    """Compile `func` to an object file for `target` (the host CPU by default); with
    `pic`, position-independent code for a shared library (the IR is optimized by the
    same pipeline, so the arithmetic is the same as the in-process build's).

    Example:
        >>> art = build(func)                    # doctest: +SKIP
        >>> kernel = compiler.runtime.load(art)  # doctest: +SKIP
        >>> kernel(a, b, c)                      # doctest: +SKIP
    """
    start = time.perf_counter()
    target = target or host_target()
    mod = _optimized_module(func, target, opt_level)
    obj = target_machine(target, opt_level, pic=pic).emit_object(mod)
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


SEQUENCE_PARAMS = ("inputs", "outputs", "weights", "arena")


@dataclass(frozen=True)
class Pointer:
    """A kernel argument in a call sequence: a parameter of the sequence plus
    `offset_bytes`. `base` "inputs" or "outputs" means the `index`-th pointer of that
    array parameter; "weights" and "arena" mean that parameter itself."""

    base: str
    index: int = 0
    offset_bytes: int = 0


@dataclass(frozen=True)
class KernelCall:
    """`symbol(*args)`: one call of an external kernel, all arguments pointers."""

    symbol: str
    args: tuple[Pointer, ...]


def build_sequence(
    entry: str, calls: Sequence[KernelCall], *, target: Target | None = None
) -> bytes:
    """Position-independent object code of `void entry(ptr inputs, ptr outputs, ptr
    weights, ptr arena)`, which makes `calls` in order (the kernels are external
    symbols, linked in beside it). `inputs` and `outputs` are arrays of pointers.

    Example:
        >>> call = KernelCall("task0", (Pointer("inputs", 0), Pointer("arena", 0, 64)))
        >>> obj = build_sequence("network", [call])   # doctest: +SKIP
    """
    target = target or host_target()
    init_llvm()
    module = ir.Module(name=entry)
    module.triple = target.triple
    module.data_layout = str(target_machine(target).target_data)
    ptr = ir.PointerType()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * 4), entry)
    fn.attributes.add("nounwind")
    for arg, name in zip(fn.args, SEQUENCE_PARAMS):
        arg.name = name
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    base = dict(zip(SEQUENCE_PARAMS, fn.args))
    loaded: dict[tuple[str, int], ir.Value] = {}

    def address(p: Pointer) -> ir.Value:
        key = (p.base, p.index)
        if p.base in ("inputs", "outputs") and key not in loaded:
            slot = builder.gep(
                base[p.base], [ir.Constant(ir.IntType(64), p.index)], source_etype=ptr
            )
            loaded[key] = builder.load(slot, f"{p.base}{p.index}", typ=ptr)
        start = loaded.get(key, base[p.base])
        if not p.offset_bytes:
            return start
        offset = ir.Constant(ir.IntType(64), p.offset_bytes)
        return builder.gep(start, [offset], inbounds=True, source_etype=ir.IntType(8))

    kernels: dict[str, ir.Function] = {}
    for call in calls:
        if call.symbol not in kernels:
            fnty = ir.FunctionType(ir.VoidType(), [ptr] * len(call.args))
            kernels[call.symbol] = ir.Function(module, fnty, call.symbol)
        builder.call(kernels[call.symbol], [address(p) for p in call.args])
    builder.ret_void()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    return bytes(target_machine(target, 2, pic=True).emit_object(parsed))
