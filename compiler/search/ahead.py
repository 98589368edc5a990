"""Search ahead: the next round's search runs while this round's candidates are timed.

Candidates are timed on one core at a time while the other sits idle, so the
next round's search (`SearchPolicy.prepare`) runs meanwhile, in a thread of
this process:

    >>> pairs, ahead = measure_while_searching(measurer, inputs, lambda: policy.prepare(n, cands))

Nothing else may compete with the timing, so while it runs the feature
workers are held back (`feature_pool.workers_held`: the search stays in this
process, on the other core) and Python's thread switch interval is lowered
from 5 ms to 0.2 ms: the thread that talks to the runner needs the
interpreter lock at every step of a pipe exchange, and waiting up to 5 ms each
time made a batch of 64 conv28c candidates take 14.7 s to time instead of
9.4 s (0.2 ms: 10.0 s; the timings themselves unchanged, median ratio 1.00).
When the timing ends the search goes on with the workers, and the call waits
for it. Ansor searches between rounds, with the core it measures on waiting.

Measured: per 1000 conv trials the rounds waited 44-49 s for the search
instead of 79-80 s, but the timings took 62-69 s instead of 57-59 s (the lock
is still contended, and the idle core is not idle any more), so the whole run
gained 5 % on conv56c; in the Prefect flow, whose own threads and server also
want the cores, the timings slowed by a third and the tuning gained 2 %.

Only when the timing leaves a core idle (`leaves_a_core_idle`: one measuring
device whose kernels use fewer threads than the machine has cores); else the
search would slow the kernels it is timed against.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass

from compiler.cost_model.feature_pool import workers_held
from compiler.measure import MeasureInput, MeasureResult
from compiler.measure.devices import Device, available_cores

SWITCH_INTERVAL_S = 0.0002

_pool: ThreadPoolExecutor | None = None


@dataclass(frozen=True)
class AheadTimes:
    ran_s: float = 0.0  # how long the search ahead took in all
    waited_s: float = 0.0  # how long the caller waited for it after the timing


def leaves_a_core_idle(runner: object) -> bool:
    """Whether `runner`'s timings leave a core of this process idle; False for a
    runner that does not say how it times (no `devices` and `settings`)."""
    devices = getattr(runner, "devices", None)
    settings = getattr(runner, "settings", None)
    if not devices or settings is None:
        return False
    return core_idle_while_timing(settings.threads, devices)


def core_idle_while_timing(threads: int, devices: Sequence[Device]) -> bool:
    """Whether timing kernels of `threads` threads (0: a device's cores) on every
    device at once leaves one of this process's cores idle."""
    busy = sum(threads or len(d.cores) for d in devices)
    return busy < len(available_cores())


class SearchAhead:
    """`prepare()` run in a background thread between `start` and `finish` (the
    timing), with the feature workers held and quick thread switches."""

    def __init__(self, prepare: Callable[[], object]) -> None:
        self.prepare = prepare
        self._stack = ExitStack()
        self._future: Future | None = None

    def start(self) -> None:
        self._stack.enter_context(workers_held())
        self._stack.enter_context(_switch_interval(SWITCH_INTERVAL_S))
        self._future = _executor().submit(_timed, self.prepare)

    def finish(self) -> AheadTimes:
        """Release the workers and wait for the search (re-raising its error)."""
        self._stack.close()
        if self._future is None:
            return AheadTimes()
        t0 = time.perf_counter()
        ran_s = self._future.result()
        return AheadTimes(ran_s, time.perf_counter() - t0)


def measure_while_searching(
    measurer,
    inputs: Sequence[MeasureInput],
    prepare: Callable[[], object] | None,
    clock: Callable[[str], AbstractContextManager] | None = None,
) -> tuple[list[tuple[MeasureInput, MeasureResult]], AheadTimes]:
    """`measurer.measure(inputs)`, with `prepare()` run beside the timing (from the
    end of the builds) and waited for (under `clock("search")`); None: just measure."""
    if prepare is None:
        return measurer.measure(inputs), AheadTimes()
    ahead = SearchAhead(prepare)
    try:
        pairs = measurer.measure(inputs, on_run_start=ahead.start)
    finally:
        with (clock or no_clock)("search"):
            times = ahead.finish()
    return pairs, times


def no_clock(name: str) -> AbstractContextManager:
    """A clock that times nothing (a phase clock takes its place in the flow)."""
    return nullcontext()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(1, thread_name_prefix="search-ahead")
    return _pool


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """Python's thread switch interval set to `seconds` for the block."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
