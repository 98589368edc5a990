"""Where a flow's wall time goes: each Prefect task body records the interval it ran,
by phase; the union of the intervals is time spent working, and the rest of the
flow's wall time is orchestration (Prefect's task runs, futures, logging).

Intervals, not sums, because builds and sketch generation run in parallel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_INTERVALS: list[tuple[str, float, float]] = []


def reset() -> None:
    with _LOCK:
        _INTERVALS.clear()


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Record the wall interval of the block under `name` (thread safe)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        with _LOCK:
            _INTERVALS.append((name, start, time.perf_counter()))


def union_s(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def summary() -> dict[str, float]:
    """Seconds per phase (union of its intervals) and `working_s`, the union of all."""
    with _LOCK:
        got = list(_INTERVALS)
    out = {f"{name}_s": union_s([(a, b) for n, a, b in got if n == name])
           for name in sorted({n for n, _, _ in got})}  # fmt: skip
    out["working_s"] = union_s([(a, b) for _, a, b in got])
    return out
