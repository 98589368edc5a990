"""The `tune_model` flow: a whole ONNX network, tuned end to end.

Import + partition (cached by the model's hash) -> sketch generation per task
(mapped, in parallel) -> the tuning loop (compiler/task_scheduler/loop.py), its
builds mapped over chunks in parallel and its timings serialized per device as
Prefect tasks (tasks/prefect_measure.py), results into the records and the cost
model -> compile the best network, check and time it next to onnxruntime ->
reports and artifacts.

    >>> from flows.tune_model import tune_model
    >>> from tasks.options import TuneOptions
    >>> summary = tune_model(TuneOptions(model="zoo:mlp", trials=64, records="runs/r.db",
    ...                                  out_dir="runs/mlp"))  # doctest: +SKIP

Rerunning with the same records resumes: nothing is measured twice and
`trials` counts only new measurements. Ctrl-C stops after the current round.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run as prefect_flow_run

from compiler.measure import Measurer, MeasureSettings
from compiler.search.ahead import core_idle_while_timing
from flows import run_artifacts
from flows.parent import ParentGone
from tasks import phase_clock
from tasks.options import TuneOptions
from tasks.partition_cache import model_digest
from tasks.prefect_measure import PrefectBuilder, PrefectRunner
from tasks.tune_tasks import (
    compile_and_check,
    export_artifact,
    generate_sketches,
    import_and_partition,
    profile_tasks,
    retime_finalists,
)
from tasks.tuning_session import TuningSession, open_session

Listener = Callable[[TuningSession, dict], None]
LISTENERS: list[Listener] = []  # the CLI's progress display subscribes here


@flow(name="tune-model", log_prints=False)
def tune_model(options: TuneOptions) -> dict:
    """Tune `options.model` (a path or zoo:NAME) with `options.trials` new measurements
    into `options.records` (tasks/options.py has every option).

    `dated` writes into OUT_DIR/YYYY-MM-DDTHHMMSS (nightly runs) and `trend`
    names the trend table each run appends to. With `dask_address`, builds and
    measurements run on that Dask cluster's workers (one device each).
    """
    started = time.perf_counter()
    phase_clock.reset()
    run_dir = _run_dir(options.out_dir, options.dated)
    options = dataclasses.replace(options, out_dir=str(run_dir))
    model = options.model
    with phase_clock.phase("setup"):
        digest = model_digest(model, options.input_shapes)
    part_path = import_and_partition(model, digest, options.input_shapes)
    if not Path(part_path).is_file():  # the cache file went away: import again
        part_path = import_and_partition.with_options(refresh_cache=True)(
            model, digest, options.input_shapes
        )
    with phase_clock.phase("setup"):
        session = open_session(options, part_path, digest)
    session.listeners.extend(LISTENERS)
    rounds = 0
    try:
        _prepare(session, local=not options.uses_dask)
        progress = run_artifacts.Progress(model)
        session.listeners.append(lambda s, line: progress.update(s))
        with _stop_on_interrupt(session):
            result = _tune_rounds(session)
            rounds, session.stop_reason = len(result.rounds), result.stop_reason
            if options.retime:  # before the network is compiled from the records
                retime_finalists(session.key)
        session.write_run_json(finished=True)
    finally:
        session.close()
    summary = _finish(session, run_dir)
    wall_s = time.perf_counter() - started
    phases = phase_clock.summary()
    summary["wall_s"] = wall_s
    summary["flow_run_id"] = str(prefect_flow_run.id)  # where Prefect's UI shows this run
    summary["timings"] = {**phases, "rounds": rounds,
                          "orchestration_s": wall_s - phases["working_s"]}  # fmt: skip
    return summary


def _run_dir(out_dir: str, dated: bool) -> Path:
    if not dated:
        return Path(out_dir)
    return Path(out_dir) / datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")


def _prepare(session: TuningSession, *, local: bool) -> None:
    """Sketches for every task (mapped in parallel on the thread runner; one after
    another in this process on Dask, whose workers do not hold the session),
    then the scheduler, resumed from the records."""
    indices = list(range(len(session.tasks)))
    if local:
        for f in generate_sketches.map(session.key, indices):
            f.result()
    else:
        for i in indices:
            generate_sketches(session.key, i)
    for line in dict.fromkeys(session.fallbacks):
        print(line, file=sys.stderr)
    with phase_clock.phase("resume"):
        session.start_scheduler()
        session.write_run_json(finished=False)


def _tune_rounds(session: TuningSession):
    """The tuning loop with builds and timings as Prefect tasks (here, or on Dask)."""
    o = session.options
    n_workers, n_build = _parallelism(o.dask_address if o.uses_dask else None)
    settings = MeasureSettings(threads=o.threads)
    runner = PrefectRunner(settings, o.devices, workers=n_workers, pin=o.pin_dask_cores)
    measurer = Measurer(builder=PrefectBuilder(n_build), runner=runner, store=session.store,
                        target=session.target)  # fmt: skip
    # search ahead only when the timing runs here, one candidate at a time, leaving a core idle
    ahead = o.search_ahead and n_workers == 1 and core_idle_while_timing(o.threads, runner.devices)
    return session.tune(measurer, ahead=ahead)


def _parallelism(dask_address: str | None) -> tuple[int, int]:
    """(measuring devices, build chunks): Dask workers, or this machine's cores."""
    if dask_address is None:
        return 1, len(os.sched_getaffinity(0))
    from distributed import Client

    with Client(dask_address, timeout=30) as client:
        workers = len(client.scheduler_info()["workers"])
    return max(1, workers), max(1, workers)


@contextmanager
def _stop_on_interrupt(session: TuningSession):
    """First Ctrl-C: finish the current round, keep every record, then stop. Second:
    abort. SIGHUP (the CLI process died, flows/cli.py): abort."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if session.stop_requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        session.stop_requested = True
        print("\nstopping after this round (Ctrl-C again to abort)", file=sys.stderr)

    def parent_gone(signum: int, frame: object) -> None:
        session.stop_requested = True
        raise ParentGone

    previous = signal.signal(signal.SIGINT, handler), signal.signal(signal.SIGHUP, parent_gone)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGHUP, previous[1])


def _finish(session: TuningSession, run_dir: Path) -> dict:
    """Compile and check the best network, write reports and artifacts; the summary."""
    o = session.options
    summary: dict = {
        "model": o.model, "trials": session.new_trials, "resumed_trials": session.resumed,
        "tasks": len(session.tasks), "records": o.records, "out_dir": str(run_dir),
        "estimated_ms": session.estimated_ms, "stopped": session.stop_requested,
        "stop_reason": session.stop_reason,
        "policy": o.policy, "scheduler": o.scheduler, "threads": o.threads,
        "task_table": session.table(),
    }  # fmt: skip
    if o.check:
        bench = compile_and_check(o.model, o.records, o.threads, str(run_dir), o.input_shapes)
        summary.update({k: bench[k] for k in ("latency_ms", "onnxruntime_latency_ms",
                                               "max_abs_err", "max_rel_err", "tuned_tasks",
                                               "untuned_tasks")})  # fmt: skip
        profile_tasks(o.model, o.records, o.threads, str(run_dir), o.input_shapes)
    if o.artifact:
        got = export_artifact(o.model, o.records, str(run_dir), o.input_shapes, o.threads)
        summary["artifact"] = got["out_dir"]
    with phase_clock.phase("reports"):
        summary["reports"] = run_artifacts.publish(session, run_dir, summary, o.trend)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in summary.items()}  # fmt: skip
