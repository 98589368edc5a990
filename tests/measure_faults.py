"""Deliberately broken programs for the measurement tests (not a test module).

`lower_with_faults` replaces lowering in builder workers (LocalBuilder's
`lower_fn`): a task named `segfault`, `hang` or `wrong` gets real, compiled
loop IR that crashes the runner, never returns, or writes a wrong value;
`slow_build` and `bad_build` never finish lowering or fail to.
"""

from __future__ import annotations

import time

from compiler.lower.loop_ir import For, ForKind, Load, PrimFunc, Seq, Store
from compiler.lower.lower import lower
from compiler.schedule.state import State
from compiler.task import SearchTask
from compiler.te.expr import FloatImm, IntImm, Var

FAR_AWAY = -(2**31) + 1  # elements: about 8 GB before the output buffer


def lower_with_faults(task: SearchTask, state: State):
    if task.name == "slow_build":  # a compile that never ends
        time.sleep(3600)
    if task.name == "bad_build":
        raise ValueError("this candidate cannot be lowered")
    func = lower(state)
    out = func.params[-1]
    if task.name == "segfault":  # a store far out of bounds
        return _prepend(func, Store(out, IntImm(FAR_AWAY), FloatImm(1.0)))
    if task.name == "hang":  # 2^62 dependent float adds
        i, j = Var("hang_i"), Var("hang_j")
        bump = Store(out, IntImm(0), Load(out, IntImm(0)) + FloatImm(1.0))
        loop = For(i, 2**31 - 1, ForKind.SERIAL, For(j, 2**31 - 1, ForKind.SERIAL, bump))
        return _prepend(func, loop)
    if task.name == "wrong":  # the right result, then one wrong element
        return PrimFunc(
            func.name, func.params, Seq((func.body, Store(out, IntImm(0), FloatImm(1e4))))
        )
    return func


def _prepend(func: PrimFunc, stmt) -> PrimFunc:
    return PrimFunc(func.name, func.params, Seq((stmt, func.body)))


def exit_at_start() -> None:
    """A worker init that ends its process before it serves anything."""
    import os

    os._exit(3)
