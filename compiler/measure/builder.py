"""Builders: compile a batch of candidates (lower + LLVM) in parallel worker processes.

Each candidate has a time limit; a worker that overruns it is killed and
replaced (BUILD_TIMEOUT), one that dies or raises gives BUILD_ERROR. The
builder also compiles each task's default schedule: the runner's reference.
"""

from __future__ import annotations

import importlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any, Protocol, Self

from compiler.lower.loop_ir import PrimFunc
from compiler.measure.types import BuildResult, ErrorKind, MeasureInput
from compiler.measure.worker import Worker, WorkerCrash, WorkerError
from compiler.schedule.steps import Step
from compiler.task import SearchTask

LowerFn = Callable[[SearchTask, Any], PrimFunc]
Job = tuple[Callable[..., BuildResult], tuple]


class Builder(Protocol):
    """Compiles candidates; `close` stops its processes."""

    def build(self, inputs: Sequence[MeasureInput]) -> list[BuildResult]: ...

    def build_references(self, tasks: Sequence[SearchTask]) -> list[BuildResult]: ...

    def close(self) -> None: ...


# ------------------------------------------------------- in the worker process

_DAGS: dict[str, Any] = {}  # workload key -> the first DAG seen (its analysis stays cached)


def _init_builder() -> None:
    """Import the compiler and set up LLVM before the first candidate is timed."""
    from compiler.target import host_target

    host_target()


def _resolve(path: str) -> LowerFn:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def build_candidate(task: SearchTask, steps: tuple[Step, ...], lower_fn: str | None) -> BuildResult:
    """Replay `steps` on the task's DAG, lower and compile (runs in a worker); a program
    built before comes from the object cache (compiler/build_cache.py)."""
    from compiler.build_cache import cached_build, program_key
    from compiler.codegen import build
    from compiler.lower.lower import lower
    from compiler.schedule.state import State
    from compiler.schedule.steps import steps_to_json
    from compiler.target import host_target

    start = time.perf_counter()
    dag = _DAGS.setdefault(task.workload_key, task.dag)

    def make() -> Any:
        state = State.replay(dag, steps)
        return build(_resolve(lower_fn)(task, state) if lower_fn else lower(state))

    try:
        if lower_fn:  # tests' deliberately broken programs are never cached
            artifact = make()
        else:
            t = host_target()
            target = f"{t.cpu} {t.features} {t.triple}"
            key = program_key(task.workload_key, steps_to_json(list(steps)), "", target)
            artifact = cached_build(key, make)
    except Exception as err:  # noqa: BLE001 - any failure of a candidate is its error
        return BuildResult(None, ErrorKind.BUILD_ERROR, f"{type(err).__name__}: {err}")
    return BuildResult(artifact, build_s=time.perf_counter() - start)


def build_reference(task: SearchTask) -> BuildResult:
    """Compile the task's default schedule (the runner's reference)."""
    from compiler.schedule.default import default_schedule

    steps = default_schedule(task.dag).steps
    return build_candidate(task, tuple(steps), None)


# ----------------------------------------------------------- in the parent


class LocalBuilder:
    """A pool of `workers` spawned processes on this machine (default: one per core).

    `lower_fn` ("module:function", called as fn(task, state) -> PrimFunc) replaces
    lowering in the workers: tests use it to compile deliberately broken programs.
    """

    def __init__(
        self, *, workers: int = 0, timeout_s: float = 15.0, lower_fn: str | None = None
    ) -> None:
        count = workers or len(os.sched_getaffinity(0))
        self.timeout_s = timeout_s
        self.lower_fn = lower_fn
        self.workers = [Worker(_init_builder) for _ in range(count)]
        for w in self.workers:
            w.start()

    def build(self, inputs: Sequence[MeasureInput]) -> list[BuildResult]:
        jobs: list[Job] = [
            (build_candidate, (i.task, tuple(i.state.steps), self.lower_fn)) for i in inputs
        ]
        return self._map(jobs)

    def build_references(self, tasks: Sequence[SearchTask]) -> list[BuildResult]:
        return self._map([(build_reference, (t,)) for t in tasks])

    def close(self) -> None:
        for w in self.workers:
            w.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _map(self, jobs: list[Job]) -> list[BuildResult]:
        """Run the jobs on idle workers as they free up; kill the ones past their deadline."""
        results: list[BuildResult | None] = [None] * len(jobs)
        pending, idle = deque(range(len(jobs))), list(self.workers)
        busy: dict[Worker, int] = {}
        while pending or busy:
            while pending and idle:
                w, i = idle.pop(), pending.popleft()
                w.submit(*jobs[i], timeout_s=self.timeout_s)
                busy[w] = i
            wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.conn for w in busy], wait_s)
            for w, i in list(busy.items()):
                if w.conn in ready or time.monotonic() >= w.deadline:
                    results[i] = self._collect(w, w.conn in ready)
                    del busy[w]
                    idle.append(w)
        return [r for r in results if r is not None]

    def _collect(self, w: Worker, ready: bool) -> BuildResult:
        if not ready:
            w.kill()
            w.start()  # the replacement spawns while the others work
            msg = f"compiling took longer than {self.timeout_s:g} s"
            return BuildResult(None, ErrorKind.BUILD_TIMEOUT, msg, self.timeout_s)
        try:
            return w.receive()
        except (WorkerCrash, WorkerError) as err:
            w.start()
            return BuildResult(None, ErrorKind.BUILD_ERROR, str(err))


def create(kind: str = "local", **options: Any) -> Builder:
    """A builder by name: `local` (worker processes on this machine)."""
    if kind == "local":
        return LocalBuilder(**options)
    raise ValueError(f"builder: unknown kind {kind!r} (choose from local)")
