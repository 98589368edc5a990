"""Side-by-side timing of two contenders (ours and a reference library).

This machine drifts between fast and slow states and both contenders leave
threads spinning after a call (OpenBLAS for a long while), so contenders are
interleaved round by round, each timed after a short pause, and the median of
the per-round ratios is what a comparison reports. Used by `sketchtune bench`
(models/compare.py) and the benchmark scripts (tests/bench/timing.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

SETTLE_S = 0.25  # lets the other contender's worker threads stop spinning
MIN_ROUND_S = 0.002  # a round of time_interleaved lasts at least this long


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
    """Per-round best times (ours, theirs): `interleaved_all` of the two."""
    ours_s, theirs_s = interleaved_all([ours, theirs], rounds, repeat)
    return ours_s, theirs_s


def interleaved_all(
    contenders: Sequence[Callable[[], object]], rounds: int, repeat: int = 3
) -> list[list[float]]:
    """Per-round best times of each contender, all timed in every round, each after
    a settle pause; each round starts one contender later than the one before, so
    none is always timed first (right after the warm-up calls, or after a given
    other one)."""
    for fn in contenders:
        fn()
    times: list[list[float]] = [[] for _ in contenders]
    n = len(contenders)
    for r in range(rounds):
        for i in [(r + j) % n for j in range(n)]:
            time.sleep(SETTLE_S)
            times[i].append(best_s(contenders[i], repeat))
    return times


def median_ratio(ours_s: list[float], theirs_s: list[float]) -> float:
    """Median over rounds of theirs / ours (> 1: we are faster)."""
    return statistics.median(t / o for o, t in zip(ours_s, theirs_s))


def time_interleaved(
    a: Callable[[], object], b: Callable[[], object], rounds: int = 5
) -> tuple[float, float]:
    """Seconds per call of `a` and of `b`: the best of `rounds` interleaved rounds, each
    of enough calls to last MIN_ROUND_S (no settle pause: for two kernels of ours)."""
    a()
    b()
    number = _calls_per_round(a)
    a_s, b_s = [], []
    for _ in range(rounds):
        a_s.append(_mean_call_s(a, number))
        b_s.append(_mean_call_s(b, number))
    return min(a_s), min(b_s)


def _calls_per_round(fn: Callable[[], object]) -> int:
    number = 1
    while _mean_call_s(fn, number) * number < MIN_ROUND_S and number < 1 << 20:
        number *= 4
    return number


def _mean_call_s(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number
