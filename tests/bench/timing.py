"""Timing helpers shared by the benchmark scripts (not a test module): the
interleaved side-by-side timing of compiler/measure/interleave.py, and the
per-call overhead of a compiled kernel."""

from __future__ import annotations

import statistics
import time

from compiler.measure.interleave import SETTLE_S, best_s, interleaved, interleaved_all, median_ratio

__all__ = [
    "SETTLE_S",
    "best_s",
    "call_overhead_us",
    "interleaved",
    "interleaved_all",
    "median_ratio",
]


def call_overhead_us(parallel: bool, batches: int = 21, calls: int = 200) -> float:
    """Per-call time of a compiled kernel that does nothing (optionally an empty
    parallel loop on the current thread count); the median over batches."""
    from compiler.codegen import build
    from compiler.lower.loop_ir import Buffer, For, ForKind, PrimFunc, Seq
    from compiler.runtime import empty, load
    from compiler.te.expr import Var

    x_buf = Buffer("X", (1,))
    body = For(Var("v"), 64, ForKind.PARALLEL, Seq(())) if parallel else Seq(())
    kernel = load(build(PrimFunc("empty_par" if parallel else "empty", (x_buf,), body)))
    x = empty((1,))
    call = kernel.bind(x)
    for _ in range(100):
        call()
    per_call = []
    for _ in range(batches):
        t = time.perf_counter()
        for _ in range(calls):
            call()
        per_call.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(per_call)
