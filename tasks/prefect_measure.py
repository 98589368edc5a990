"""The Prefect back end of the measurer: builds and timings as Prefect tasks.

`compiler.measure.Measurer` skips what was measured, builds, times and records
each result; what builds and what times is its builder and runner. The flow
gives it these two, so the tuning loop (compiler/task_scheduler/loop.py) is the
same one `tune-op` runs, and Prefect sees coarse task runs:

- `PrefectBuilder`: a round's candidates cut into chunks, one mapped
  `build-chunk` task run per chunk, in parallel (threads, or Dask workers);
- `PrefectRunner`: `measure` task runs: one per round on this machine (two
  timings on the same cores would spoil each other), which hands each result
  back as it arrives, so it is recorded at once, as `tune-op` records it; or
  one batch per Dask worker (each worker a measuring device), recorded as each
  batch returns (a result cannot call back across processes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from compiler.measure import Device, MeasureSettings, make_devices
from compiler.measure.types import BuildResult, MeasureInput, MeasureResult, RunRequest
from compiler.task import SearchTask
from tasks.device import local_builder
from tasks.tune_tasks import build_chunk, measure_batch

OnResult = Callable[[int, MeasureResult], None]


class PrefectBuilder:
    """Builds as `build-chunk` task runs, `chunks` of them in parallel."""

    def __init__(self, chunks: int) -> None:
        self.chunks = max(1, chunks)

    def build(self, inputs: Sequence[MeasureInput]) -> list[BuildResult]:
        n = max(1, min(self.chunks, len(inputs)))
        parts = [list(inputs[k::n]) for k in range(n)]
        futures = build_chunk.map(parts, list(range(n)))
        out: list = [None] * len(inputs)
        for k, future in enumerate(futures):
            out[k::n] = future.result()
        return out

    def build_references(self, tasks: Sequence[SearchTask]) -> list[BuildResult]:
        """The tasks' default schedules, built in this process (the records are here)."""
        return local_builder(-1).build_references(tasks)

    def close(self) -> None:
        return None


class PrefectRunner:
    """Timings as `measure` task runs: one per round with one worker (this machine),
    each result handed back as it arrives; else one batch per Dask worker at once,
    worker k pinned to core k when `pin`."""

    def __init__(
        self, settings: MeasureSettings, devices: str = "default", *, workers: int = 1,
        pin: bool = False,
    ) -> None:  # fmt: skip
        self.settings, self.kind, self.workers, self.pin = settings, devices, workers, pin
        # what times at once on this machine (search ahead asks: compiler/search/ahead.py)
        self.devices = make_devices(devices) if workers == 1 else []

    def run(
        self, requests: Sequence[RunRequest], on_result: OnResult | None = None
    ) -> list[MeasureResult]:
        if self.workers == 1:  # one task run; each result recorded as it arrives (and
            # never retried: a retry would hand back the results already recorded)
            run = measure_batch.with_options(retries=0)
            return run(list(requests), self.settings, self.kind, on_result)
        batches = [range(k, len(requests), self.workers) for k in range(self.workers)]
        futures = [
            (b, measure_batch.submit([requests[i] for i in b], self.settings, self._device(k)))
            for k, b in enumerate(batches)
            if len(b)
        ]
        out: list = [None] * len(requests)
        for indices, future in futures:
            results = future.result()
            for i, result in zip(indices, results):
                out[i] = result
                if on_result is not None:
                    on_result(i, result)
        return out

    def _device(self, k: int) -> str | tuple[Device, ...]:
        """Worker batch k of a local cluster times on core k (distinct cores at once)."""
        if not self.pin:
            return "default"
        cores = sorted(os.sched_getaffinity(0))
        core = cores[k % len(cores)]
        return (Device(f"cpu{core}", (core,)),)

    def close(self) -> None:
        return None
