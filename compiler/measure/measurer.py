"""Measure a batch of candidates: skip the measured, build all, then time all, record each.

Overlap policy: a batch's builds finish before its measurements start, and the
next batch is not built while this one is measured. Builders use every core and
so do the measuring devices (one device with all cores, or one per core), so
any overlap would put a compile on a core that is timing a kernel.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compiler.codegen.build import Artifact
from compiler.errors import StoppedError
from compiler.measure.builder import Builder
from compiler.measure.rescue import Rescue
from compiler.measure.runner import Runner, timing_threads
from compiler.measure.types import BuildResult, MeasureInput, MeasureResult, RunRequest
from compiler.records import (
    MeasureRecord,
    RecordStore,
    StoreWriteError,
    TargetInfo,
    claim_owner,
    host_target_info,
    steps_hash,
)
from compiler.records.record import tool_version
from compiler.schedule.steps import steps_to_json
from compiler.task import SearchTask


@dataclass
class MeasureStats:
    """Wall-clock seconds spent building and measuring, and candidate counts."""

    build_s: float = 0.0
    measure_s: float = 0.0
    measured: int = 0
    skipped: int = 0


class Measurer:
    """Builds and runs candidates, writes each result to the records store as it arrives.

    Example:
        >>> m = Measurer(builder=LocalBuilder(), runner=LocalRunner(), store=db)  # doctest: +SKIP
        >>> pairs = m.measure([MeasureInput(task, state) for state in states])   # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        builder: Builder,
        runner: Runner,
        store: RecordStore | None = None,
        target: TargetInfo | None = None,
    ) -> None:
        self.builder, self.runner, self.store = builder, runner, store
        self.target = target or host_target_info(timing_threads(runner))
        self.references: dict[str, Artifact | None] = {}
        self.stats = MeasureStats()
        self.rescue: Rescue | None = None  # set when the records database refused a write
        self.claim_owner = claim_owner()  # whose claims on candidates this measurer holds
        self.taken: list[MeasureInput] = []  # the last batch's candidates another run held

    def measure(
        self, inputs: Sequence[MeasureInput], on_run_start: Callable[[], object] | None = None
    ) -> list[tuple[MeasureInput, MeasureResult]]:
        """Results of the candidates not measured before (on this target), in input order.
        `on_run_start()` is called between the builds and the first timing."""
        fresh = self.fresh(inputs)
        builds = self.build(fresh)
        if on_run_start is not None:
            on_run_start()
        return self.run(fresh, builds)

    def fresh(self, inputs: Sequence[MeasureInput]) -> list[MeasureInput]:
        """The candidates not in the store, not repeated in this batch and not claimed
        by another live run on the same database (counted as skipped); this
        measurer claims those it returns."""
        self.taken = []
        out = self._fresh(inputs)
        self.stats.skipped += len(inputs) - len(out)
        return out

    def build(
        self, inputs: Sequence[MeasureInput], builder: Builder | None = None
    ) -> list[BuildResult]:
        """Compile the candidates (and their tasks' references, once) on `builder`
        (default: this measurer's). The pipeline builds chunks on several builders."""
        start = time.perf_counter()
        self.ensure_references(inputs, builder)
        builds = (builder or self.builder).build(inputs)
        self.stats.build_s += time.perf_counter() - start
        return builds

    def run(
        self, inputs: Sequence[MeasureInput], builds: Sequence[BuildResult]
    ) -> list[tuple[MeasureInput, MeasureResult]]:
        """Time the built candidates and record every result (a build failure too)
        as it arrives.

        A result the records database refuses (a full disk) goes to a JSON-lines
        file beside it, as every later one of the batch does, and then the run
        stops (StoppedError, naming the database, the cause and the file); so
        does a runner that fails, with every result it gave recorded.
        """
        results: list[MeasureResult | None] = [None] * len(inputs)
        runnable = []
        for i, b in enumerate(builds):
            if b.artifact is None:
                results[i] = self._finish(inputs[i], _build_failure(b))
            else:
                runnable.append(i)
        start = time.perf_counter()
        requests = [self._request(inputs[i], builds[i]) for i in runnable]

        def on_result(k: int, result: MeasureResult) -> None:
            i = runnable[k]
            results[i] = self._finish(
                inputs[i], dataclasses.replace(result, build_s=builds[i].build_s)
            )

        try:
            self.runner.run(requests, on_result)
        except Exception as err:
            if self.rescue is not None:  # the records' error is the first cause
                raise self.rescue.error() from err
            raise StoppedError(f"measuring failed: {type(err).__name__}: {err}") from err
        self.stats.measure_s += time.perf_counter() - start
        self.stats.measured += len(inputs)
        if self.rescue is not None:
            raise self.rescue.error()
        return [(inp, r) for inp, r in zip(inputs, results) if r is not None]

    def _fresh(self, inputs: Sequence[MeasureInput]) -> list[MeasureInput]:
        """Drop candidates already in the store or repeated in this batch, then claim
        the rest in the store (`SQLiteStore.claim`, under one owner per measurer) and
        drop those another live run holds: concurrent runs on one database split the
        candidates, none measured twice. A claim goes when the record is written."""
        seen: dict[str, set[str]] = {}
        kept: list[tuple[MeasureInput, str]] = []
        for inp in inputs:
            key = inp.task.workload_key
            if key not in seen:
                seen[key] = self.store.measured(key, self.target.target) if self.store else set()
            h = steps_hash(steps_to_json(inp.state.steps))
            if h not in seen[key]:
                seen[key].add(h)
                kept.append((inp, h))
        return self._claim(kept)

    def _claim(self, kept: list[tuple[MeasureInput, str]]) -> list[MeasureInput]:
        """The candidates (with their step hashes) this measurer now holds in the store."""
        claim = getattr(self.store, "claim", None)
        if claim is None or not kept:
            return [inp for inp, _ in kept]
        by_key: dict[str, list[str]] = {}
        for inp, h in kept:
            by_key.setdefault(inp.task.workload_key, []).append(h)
        try:
            held = {k: claim(k, self.target.target, hs, self.claim_owner)
                    for k, hs in by_key.items()}  # fmt: skip
        except StoreWriteError:  # writing the results fails too: they go to the rescue file
            return [inp for inp, _ in kept]
        self.taken = [inp for inp, h in kept if h not in held[inp.task.workload_key]]
        return [inp for inp, h in kept if h in held[inp.task.workload_key]]

    def ensure_references(
        self, inputs: Sequence[MeasureInput], builder: Builder | None = None
    ) -> None:
        """Build the reference program of every task in `inputs` not built yet."""
        tasks: dict[str, SearchTask] = {}
        for inp in inputs:
            if inp.task.workload_key not in self.references:
                tasks.setdefault(inp.task.workload_key, inp.task)
        if not tasks:
            return
        built = (builder or self.builder).build_references(list(tasks.values()))
        for key, b in zip(tasks, built):
            self.references[key] = b.artifact

    def _request(self, inp: MeasureInput, built: BuildResult) -> RunRequest:
        assert built.artifact is not None
        key = inp.task.workload_key
        n_inputs = len(inp.task.dag.placeholders)
        return RunRequest(built.artifact, self.references.get(key), n_inputs, key)

    def _finish(self, inp: MeasureInput, result: MeasureResult) -> MeasureResult:
        if self.store is None:
            return result
        record = to_record(inp, result, self.target)
        if self.rescue is None:
            try:
                self.store.add([record])
                return result
            except StoreWriteError as err:
                self.rescue = Rescue(getattr(self.store, "path", "records"), err)
        self.rescue.keep(record)
        return result


def _build_failure(b: BuildResult) -> MeasureResult:
    return MeasureResult((), b.error_kind, b.error_msg, b.build_s, 0.0)


def to_record(inp: MeasureInput, result: MeasureResult, target: TargetInfo) -> MeasureRecord:
    """The stored form of one measurement."""
    kind = result.error_kind.value if result.error_kind is not None else None
    return MeasureRecord(
        workload_key=inp.task.workload_key,
        target=target.target,
        steps=steps_to_json(inp.state.steps),
        costs_s=result.costs_s,
        error_kind=kind,
        timestamp=result.timestamp,
        error_msg=result.error_msg,
        build_s=result.build_s,
        run_s=result.run_s,
        task_name=inp.task.name,
        flop_count=inp.task.flop_count,
        settings={**result.settings, "template": inp.meta} if inp.meta else result.settings,
        tool_version=tool_version(),
        cpu=target.cpu,
        features=target.features,
        cores=target.cores,
    )
