"""Runners: long-lived processes that load built candidates and time them, one per device.

A candidate that crashes its runner (RUNNER_CRASH) or hangs past the time
limit (RUN_TIMEOUT, the process is killed) costs a restart; the batch goes on.
With several devices (per-core), candidates are measured in parallel, each
device's runner pinned to its cores.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, Self

from compiler.measure.devices import Device, make_devices
from compiler.measure.evaluator import init_runner, run_candidate
from compiler.measure.side_by_side import side_by_side
from compiler.measure.types import ErrorKind, MeasureResult, MeasureSettings, RunRequest
from compiler.measure.worker import Worker, WorkerCrash, WorkerError, WorkerTimeout

OnResult = Callable[[int, MeasureResult], None]


class Runner(Protocol):
    """Times built candidates; `on_result(index, result)` is called as each one finishes."""

    settings: MeasureSettings

    def run(
        self, requests: Sequence[RunRequest], on_result: OnResult | None = None
    ) -> list[MeasureResult]: ...

    def close(self) -> None: ...


def timing_threads(runner: Runner) -> int:
    """The threads each candidate is timed on: the settings' count, else (0) the first
    device's cores; 1 when the runner cannot say (remote workers)."""
    devices = getattr(runner, "devices", None)
    return runner.settings.threads or (len(devices[0].cores) if devices else 1)


class LocalRunner:
    """One runner process per device of this machine, restarted after a crash or hang."""

    def __init__(
        self,
        *,
        settings: MeasureSettings | None = None,
        devices: str | Sequence[Device] = "default",
    ) -> None:
        self.settings = settings or MeasureSettings()
        self.devices = make_devices(devices) if isinstance(devices, str) else list(devices)
        self.workers = [Worker(init_runner, (d.cores, self._threads(d))) for d in self.devices]
        for w in self.workers:
            w.start()

    def _threads(self, device: Device) -> int:
        return self.settings.threads or len(device.cores)

    def run(
        self, requests: Sequence[RunRequest], on_result: OnResult | None = None
    ) -> list[MeasureResult]:
        results: list[MeasureResult | None] = [None] * len(requests)
        queue, lock = deque(enumerate(requests)), threading.Lock()
        failures: list[BaseException] = []

        def drain(k: int) -> None:
            while not failures:
                try:
                    i, req = queue.popleft()
                except IndexError:
                    return
                try:
                    result = results[i] = self._measure(k, req)
                    if on_result is not None:
                        with lock:
                            on_result(i, result)
                except BaseException as err:  # noqa: BLE001 - raised by run(), below
                    failures.append(err)

        threads = [threading.Thread(target=drain, args=(k,)) for k in range(len(self.workers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:  # a runner that cannot start, a result that cannot be taken
            raise failures[0]
        return [r for r in results if r is not None]

    def _measure(self, k: int, req: RunRequest) -> MeasureResult:
        """Measure on device k; a dead or killed runner is restarted in the background."""
        worker, s = self.workers[k], self.settings
        worker.wait_ready()
        start = time.perf_counter()
        costs: tuple[float, ...] = ()
        kind, msg = None, ""
        try:
            costs, kind, msg = worker.call(run_candidate, (req, s), s.run_timeout_s)
        except WorkerTimeout:
            kind, msg = ErrorKind.RUN_TIMEOUT, f"no result within {s.run_timeout_s:g} s"
        except WorkerCrash as err:
            kind, msg = ErrorKind.RUNNER_CRASH, str(err)
        except WorkerError as err:
            kind, msg = ErrorKind.RUN_ERROR, str(err)
        if kind in (ErrorKind.RUN_TIMEOUT, ErrorKind.RUNNER_CRASH):
            worker.start()
        run_s = time.perf_counter() - start
        return MeasureResult(costs, kind, msg, 0.0, run_s, settings=self._record_settings(k))

    def side_by_side(self, requests: Sequence[RunRequest], rounds: int) -> list[list[float]]:
        """Seconds per call of each request in each of `rounds` interleaved rounds, timed
        in the first device's process (compiler/measure/side_by_side.py). A crash or a
        hang restarts the process and raises WorkerCrash / WorkerTimeout."""
        worker, s = self.workers[0], self.settings
        worker.wait_ready()
        timeout_s = s.run_timeout_s * max(1, len(requests)) * rounds
        try:
            return worker.call(side_by_side, (list(requests), s, rounds), timeout_s)
        except (WorkerTimeout, WorkerCrash):
            worker.start()
            raise

    def _record_settings(self, k: int) -> dict[str, Any]:
        device = self.devices[k]
        out = self.settings.to_json()
        out.update(device=device.name, cores=list(device.cores), threads=self._threads(device))
        return out

    def close(self) -> None:
        for w in self.workers:
            w.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create(kind: str = "local", **options: Any) -> Runner:
    """A runner by name: `local` (runner processes on this machine's devices)."""
    if kind == "local":
        return LocalRunner(**options)
    raise ValueError(f"runner: unknown kind {kind!r} (choose from local)")
