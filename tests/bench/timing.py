"""Timing helpers shared by the benchmark scripts (not a test module).

This machine drifts between fast and slow states and both contenders leave
threads spinning after a call (OpenBLAS for a long while), so contenders are
interleaved round by round, each timed after a short pause, and the median of
the per-round ratios is what a benchmark reports.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

SETTLE_S = 0.25  # lets the other contender's worker threads stop spinning


def best_s(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of `repeat` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def interleaved(
    ours: Callable[[], object], theirs: Callable[[], object], rounds: int, repeat: int = 3
) -> tuple[list[float], list[float]]:
    """Per-round best times (ours, theirs), alternating and settling before each."""
    ours_s, theirs_s = [], []
    for _ in range(rounds):
        time.sleep(SETTLE_S)
        ours_s.append(best_s(ours, repeat))
        time.sleep(SETTLE_S)
        theirs_s.append(best_s(theirs, repeat))
    return ours_s, theirs_s


def median_ratio(ours_s: list[float], theirs_s: list[float]) -> float:
    """Median over rounds of theirs / ours (> 1: we are faster)."""
    return statistics.median(t / o for o, t in zip(ours_s, theirs_s))


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
