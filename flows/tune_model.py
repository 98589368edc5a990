"""The `tune_model` flow: a whole ONNX network, tuned end to end.

Import + partition (cached by the model's hash) -> sketch generation per task
(mapped, in parallel) -> rounds chosen by the task scheduler: a search round for
the chosen task, builds mapped over chunks in parallel, measurement (serialized
per device), results into the records and the cost model -> compile the best
network, check and time it next to onnxruntime -> reports and artifacts.

    >>> from flows.tune_model import tune_model
    >>> summary = tune_model(model="zoo:mlp", trials=64, records="runs/r.db",
    ...                      out_dir="runs/mlp")  # doctest: +SKIP

Rerunning with the same records resumes: nothing is measured twice and
`trials` counts only new measurements. Ctrl-C stops after the current round.
"""

from __future__ import annotations

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

from flows import run_artifacts
from tasks import phase_clock
from tasks.partition_cache import model_digest
from tasks.tune_tasks import (
    build_chunk,
    compile_and_check,
    generate_sketches,
    import_and_partition,
    measure_batch,
    profile_tasks,
    search_round,
)
from tasks.tuning_session import RunOptions, TuningSession, open_session

Listener = Callable[[TuningSession, dict], None]
LISTENERS: list[Listener] = []  # the CLI's live table subscribes here


@flow(name="tune-model", log_prints=False)
def tune_model(
    model: str,
    trials: int = 256,
    records: str = "runs/records.db",
    out_dir: str = "runs/latest",
    policy: str = "sketch",
    tuner: str = "xgb",
    scheduler: str = "gradient",
    threads: int = 1,
    devices: str = "default",
    seed: int = 0,
    per_round: int = 64,
    early_stopping: int | None = None,
    search_ahead: bool = True,
    dated: bool = False,
    trend: str | None = None,
    dask_address: str | None = None,
    pin_dask_cores: bool = False,
    check: bool = True,
) -> dict:
    """Tune `model` (a path or zoo:NAME) with `trials` new measurements into `records`.

    `dated` writes into OUT_DIR/YYYY-MM-DDTHHMMSS (nightly runs) and `trend`
    names the trend table each run appends to. With `dask_address`, builds and
    measurements run on that Dask cluster's workers (one device each).
    """
    started = time.perf_counter()
    phase_clock.reset()
    run_dir = _run_dir(out_dir, dated)
    options = RunOptions(
        model=model, trials=trials, records=records, out_dir=str(run_dir), policy=policy,
        tuner=tuner, scheduler=scheduler, threads=threads, devices=devices, seed=seed,
        per_round=per_round, early_stopping=early_stopping, search_ahead=search_ahead,
    )  # fmt: skip
    with phase_clock.phase("setup"):
        digest = model_digest(model)
    part_path = import_and_partition(model, digest)
    if not Path(part_path).is_file():  # the cache file went away: import again
        part_path = import_and_partition.with_options(refresh_cache=True)(model, digest)
    with phase_clock.phase("setup"):
        session = open_session(options, part_path, digest)
    session.listeners.extend(LISTENERS)
    rounds = 0
    try:
        _prepare(session, local=dask_address is None)
        progress = run_artifacts.Progress(model)
        session.listeners.append(lambda s, line: progress.update(s))
        with _stop_on_interrupt(session):
            rounds = _tune_rounds(session, dask_address, pin_dask_cores)
        session.write_run_json(finished=True)
    finally:
        session.close()
    summary = _finish(session, run_dir, check=check, trend=trend)
    wall_s = time.perf_counter() - started
    phases = phase_clock.summary()
    summary["wall_s"] = wall_s
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


def _tune_rounds(session: TuningSession, dask_address: str | None, pin: bool) -> int:
    """Rounds until the scheduler, the budget or Ctrl-C stops; how many ran."""
    rounds = 0
    n_workers, n_build = _parallelism(dask_address)
    ahead = session.searches_ahead(n_workers)
    while (idx := session.next_task()) is not None:
        n_new = search_round(session.key, idx)
        if n_new == 0:
            session.skip_round()
            continue
        chunks = session.chunks(n_build)
        t0 = time.perf_counter()
        futures = build_chunk.map(chunks, list(range(len(chunks))))
        builds = [f.result() for f in futures]
        build_s = time.perf_counter() - t0
        session.record(chunks, builds, _runner(session, n_workers, pin), build_s=build_s,
                       ahead=ahead)  # fmt: skip
        rounds += 1
    return rounds


def _parallelism(dask_address: str | None) -> tuple[int, int]:
    """(measuring devices, build chunks): Dask workers, or this machine's cores."""
    if dask_address is None:
        return 1, len(os.sched_getaffinity(0))
    from distributed import Client

    with Client(dask_address, timeout=30) as client:
        workers = len(client.scheduler_info()["workers"])
    return max(1, workers), max(1, workers)


def _runner(session: TuningSession, n_workers: int, pin: bool):
    """A function timing a list of requests: here (one batch), or one batch per Dask worker."""
    settings, devices = session.settings, session.options.devices

    def run(requests: list) -> list:
        if n_workers == 1:
            return measure_batch(requests, settings, devices)
        parts = [requests[k::n_workers] for k in range(n_workers)]
        futures = [
            measure_batch.submit(part, settings, _pinned(k) if pin else "default")
            for k, part in enumerate(parts)
            if part
        ]
        done = [f.result() for f in futures]
        out: list = [None] * len(requests)
        for k, results in enumerate(done):
            out[k::n_workers] = results
        return out

    return run


def _pinned(k: int) -> tuple:
    """Worker batch k of a local cluster measures on core k (distinct cores at once)."""
    from compiler.measure import Device

    cores = sorted(os.sched_getaffinity(0))
    core = cores[k % len(cores)]
    return (Device(f"cpu{core}", (core,)),)


@contextmanager
def _stop_on_interrupt(session: TuningSession):
    """First Ctrl-C: finish the current round, keep every record, then stop. Second: abort."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if session.stop_requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        session.stop_requested = True
        print("\nstopping after this round (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _finish(session: TuningSession, run_dir: Path, *, check: bool, trend: str | None) -> dict:
    """Compile and check the best network, write reports and artifacts; the summary."""
    o = session.options
    summary: dict = {
        "model": o.model, "trials": session.new_trials, "resumed_trials": session.resumed,
        "tasks": len(session.tasks), "records": o.records, "out_dir": str(run_dir),
        "estimated_ms": session.estimated_ms, "stopped": session.stop_requested,
        "policy": o.policy, "scheduler": o.scheduler, "threads": o.threads,
        "task_table": session.table(),
    }  # fmt: skip
    if check:
        bench = compile_and_check(o.model, o.records, o.threads, str(run_dir))
        summary.update({k: bench[k] for k in ("latency_ms", "onnxruntime_latency_ms",
                                               "max_abs_err", "max_rel_err", "tuned_tasks",
                                               "untuned_tasks")})  # fmt: skip
        profile_tasks(o.model, o.records, o.threads, str(run_dir))
    with phase_clock.phase("reports"):
        summary["reports"] = run_artifacts.publish(session, run_dir, summary, trend)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in summary.items()}  # fmt: skip
