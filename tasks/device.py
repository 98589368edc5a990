"""Build and measure on whatever process this runs in: the flow's own (thread task
runner) or a Dask worker (each worker is one measuring device).

Builders and runners are process-local and created on first use, so a Dask
worker keeps its runner warm across rounds. They spawn child processes (crash
and hang isolation); a daemonic Dask worker cannot, so there the build and
the timing run in the worker itself — start workers with
`distributed.worker.daemon: false` (our LocalCluster does) to keep isolation.
"""

from __future__ import annotations

import atexit
import multiprocessing
import time
from collections.abc import Sequence

from compiler.measure import (
    BuildResult,
    Device,
    ErrorKind,
    LocalBuilder,
    LocalRunner,
    MeasureInput,
    MeasureResult,
    MeasureSettings,
    RunRequest,
)
from compiler.measure.builder import build_candidate
from compiler.measure.evaluator import init_runner, run_candidate
from compiler.measure.runner import OnResult

_BUILDERS: dict[int, LocalBuilder] = {}
_RUNNERS: dict[tuple, LocalRunner] = {}


def _can_spawn() -> bool:
    return not multiprocessing.current_process().daemon


def build_chunk_here(
    inputs: Sequence[MeasureInput], slot: int, timeout_s: float = 15.0
) -> list[BuildResult]:
    """Compile one chunk of candidates on this process's builder number `slot`."""
    if not _can_spawn():
        return [build_candidate(i.task, tuple(i.state.steps), None) for i in inputs]
    return local_builder(slot, timeout_s).build(inputs)


def local_builder(slot: int, timeout_s: float = 15.0) -> LocalBuilder:
    """This process's one-worker builder number `slot`, started on first use."""
    builder = _BUILDERS.get(slot)
    if builder is None:
        builder = _BUILDERS[slot] = LocalBuilder(workers=1, timeout_s=timeout_s)
    return builder


def run_here(
    requests: Sequence[RunRequest],
    settings: MeasureSettings,
    devices: str | tuple[Device, ...] = "default",
    on_result: OnResult | None = None,
) -> list[MeasureResult]:
    """Time built candidates on this process's runner (one per settings and devices):
    `devices` is a kind ("default", "per-core") or explicit devices (pinned cores).
    `on_result(index, result)` is called as each candidate finishes."""
    if not _can_spawn():
        results = []
        for k, req in enumerate(requests):
            results.append(_run_inline(req, settings))
            if on_result is not None:
                on_result(k, results[-1])
        return results
    key = (settings, devices)
    runner = _RUNNERS.get(key)
    if runner is None:
        runner = _RUNNERS[key] = LocalRunner(settings=settings, devices=devices)
    return runner.run(requests, on_result)


def _run_inline(req: RunRequest, settings: MeasureSettings) -> MeasureResult:
    start = time.perf_counter()
    init_runner((), settings.threads or 1)
    try:
        costs, kind, msg = run_candidate(req, settings)
    except Exception as err:  # noqa: BLE001 - a failing candidate is a record, not a crash
        costs, kind, msg = (), ErrorKind.RUN_ERROR, f"{type(err).__name__}: {err}"
    return MeasureResult(costs, kind, msg, 0.0, time.perf_counter() - start)


def close_devices() -> None:
    """Stop this process's builder and runner processes."""
    for pool in (_BUILDERS, _RUNNERS):
        for item in pool.values():
            item.close()
        pool.clear()


atexit.register(close_devices)
