"""The LLVM target machines for a `Target` (described in `compiler.target`).

The LLVM objects are cached per process because creating a target machine
costs milliseconds.
"""

from __future__ import annotations

from functools import cache

import llvmlite.binding as llvm

from compiler.target import Target, init_llvm


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
