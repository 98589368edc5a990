"""The CPU that code is generated for, and the LLVM target machines for it.

A `Target` is plain data (it is written into measurement records); the LLVM
objects built from it are cached per process because creating a target
machine costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import llvmlite.binding as llvm

# Features worth naming in a record: they decide which code the compiler can emit.
_NOTABLE_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512vnni",
    "avx512bf16",
    "avx512fp16",
    "amx-tile",
)


@dataclass(frozen=True)
class Target:
    """An LLVM CPU name, its feature string (`+avx2,+fma,...`) and a target triple."""

    cpu: str
    features: str
    triple: str

    def describe(self) -> str:
        """The short form stored in records, e.g. `llvm -mcpu=rocketlake -mattr=+avx2,+fma`."""
        enabled = {f[1:] for f in self.features.split(",") if f.startswith("+")}
        notable = ",".join(f"+{f}" for f in _NOTABLE_FEATURES if f in enabled)
        return f"llvm -mcpu={self.cpu} -mattr={notable}" if notable else f"llvm -mcpu={self.cpu}"


@cache
def init_llvm() -> None:
    """Initialize LLVM's native target once per process."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@cache
def host_target() -> Target:
    """The CPU this process runs on, with all its features."""
    init_llvm()
    return Target(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        triple=llvm.get_process_triple(),
    )


@cache
def target_machine(target: Target, opt_level: int = 3) -> llvm.TargetMachine:
    """The shared LLVM target machine for `target` (never hand it to an engine)."""
    return new_target_machine(target, opt_level)


def new_target_machine(target: Target, opt_level: int = 3) -> llvm.TargetMachine:
    """A fresh target machine, set up for code loaded by MCJIT.

    The JIT code model (large on x86-64) with static relocations lets the
    runtime load the object anywhere and resolve libm/libgomp by absolute address.
    An execution engine takes ownership of (and frees) the machine it is given,
    which is why the runtime asks for a fresh one.
    """
    init_llvm()
    return llvm.Target.from_triple(target.triple).create_target_machine(
        cpu=target.cpu,
        features=target.features,
        opt=opt_level,
        reloc="static",
        codemodel="jitdefault",
    )
