"""Loop IR to machine code for the host CPU through LLVM (llvmlite)."""

from compiler.codegen.build import Artifact, ParamSpec, assembly, build, llvm_ir
from compiler.codegen.context import CodegenError
from compiler.codegen.llvm_codegen import emit_module
from compiler.codegen.target import target_machine
from compiler.target import Target, host_target

__all__ = [
    "Artifact",
    "CodegenError",
    "ParamSpec",
    "Target",
    "assembly",
    "build",
    "emit_module",
    "host_target",
    "llvm_ir",
    "target_machine",
]
