"""The LLVM target machines for a `Target` (described in `compiler.target`).

The LLVM objects are cached per process because creating a target machine
costs milliseconds.
"""

from __future__ import annotations

from functools import cache

import llvmlite.binding as llvm

from compiler.target import Target, init_llvm


@cache
def target_machine(target: Target, opt_level: int = 3, *, pic: bool = False) -> llvm.TargetMachine:
    """The shared LLVM target machine for `target` (never hand it to an engine);
    `pic` for position-independent code (see `new_target_machine`)."""
    return new_target_machine(target, opt_level, pic=pic)


def new_target_machine(
    target: Target, opt_level: int = 3, *, pic: bool = False
) -> llvm.TargetMachine:
    """A fresh target machine, set up for code loaded by MCJIT (or, with `pic`, for a
    shared library).

    The JIT code model (large on x86-64) with static relocations lets the
    runtime load the object anywhere and resolve libm/libgomp by absolute address.
    An execution engine takes ownership of (and frees) the machine it is given,
    which is why the runtime asks for a fresh one. With `pic`: position-independent
    code in the small code model, what the system linker needs to put the object
    in a shared library (calls to libm and libgomp go through the PLT).
    """
    init_llvm()
    return llvm.Target.from_triple(target.triple).create_target_machine(
        cpu=target.cpu,
        features=target.features,
        opt=opt_level,
        reloc="pic" if pic else "static",
        codemodel="default" if pic else "jitdefault",
    )
