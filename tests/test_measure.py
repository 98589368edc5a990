"""Measurement with real processes and real faults: crashes, hangs, wrong results,
slow and failing builds; the runner recovers and the rest of the batch is measured."""

from __future__ import annotations

import os

import pytest
from candidates import default_variants, matmul_task

from compiler.measure import (
    ErrorKind,
    LocalBuilder,
    LocalRunner,
    MeasureInput,
    Measurer,
    MeasureSettings,
    make_devices,
)
from compiler.records import SQLiteStore
from compiler.task import SearchTask

FAST = MeasureSettings(number=1, repeat=2, min_repeat_ms=1.0, run_timeout_s=3.0)


@pytest.fixture(scope="module")
def builder():
    with LocalBuilder(timeout_s=4.0, lower_fn="measure_faults:lower_with_faults") as b:
        yield b


@pytest.fixture(scope="module")
def runner():
    with LocalRunner(settings=FAST) as r:
        yield r


def faulty(name: str, task: SearchTask, state) -> MeasureInput:
    return MeasureInput(SearchTask(name, task.dag), state)


def test_faults_get_their_kind_and_the_batch_goes_on(builder, runner, tmp_path):
    task = matmul_task(32, 32, 32)
    states = default_variants(task, 8, seed=1)
    names = ["ok", "segfault", "ok", "hang", "ok", "wrong", "ok", "segfault"]
    inputs = [faulty(n, task, s) for n, s in zip(names, states)]
    with SQLiteStore(tmp_path / "r.db") as db:
        pairs = Measurer(builder=builder, runner=runner, store=db).measure(inputs)
        assert db.count() == len(inputs)
    kinds = {
        "ok": None,
        "segfault": ErrorKind.RUNNER_CRASH,
        "hang": ErrorKind.RUN_TIMEOUT,
        "wrong": ErrorKind.WRONG_RESULT,
    }
    assert [r.error_kind for _, r in pairs] == [kinds[n] for n in names]
    for inp, r in pairs:
        assert r.is_valid == (inp.task.name == "ok")
        assert len(r.costs_s) == (FAST.repeat if r.is_valid else 0)
    assert "SIGSEGV" in pairs[1][1].error_msg
    assert "differ from the default schedule" in pairs[5][1].error_msg


def test_build_timeout_and_build_error(builder, runner):
    task = matmul_task(16, 16, 16)
    states = default_variants(task, 3, seed=2)
    inputs = [faulty(n, task, s) for n, s in zip(["slow_build", "bad_build", "ok"], states)]
    pairs = Measurer(builder=builder, runner=runner).measure(inputs)
    assert [r.error_kind for _, r in pairs] == [
        ErrorKind.BUILD_TIMEOUT,
        ErrorKind.BUILD_ERROR,
        None,
    ]
    assert "cannot be lowered" in pairs[1][1].error_msg


def test_settings_are_recorded_and_repeats_measured(builder, runner, tmp_path):
    task = matmul_task(16, 16, 16)
    inputs = [MeasureInput(task, s) for s in default_variants(task, 2, seed=3)]
    with SQLiteStore(tmp_path / "r.db") as db:
        Measurer(builder=builder, runner=runner, store=db).measure(inputs)
        recs = list(db.records())
    assert all(r.error_kind is None and len(r.costs_s) == 2 for r in recs)
    s = recs[0].settings
    assert (s["number"], s["repeat"], s["min_repeat_ms"], s["flush"]) == (1, 2, 1.0, False)
    assert s["device"] == "cpu" and s["threads"] == len(os.sched_getaffinity(0))
    assert recs[0].build_s > 0 and recs[0].run_s > 0


def test_per_core_devices_are_pinned_and_measure_in_parallel():
    cores = tuple(sorted(os.sched_getaffinity(0)))[:2]
    settings = MeasureSettings(number=1, repeat=1, min_repeat_ms=1.0, flush=True, cooldown_s=0.01)
    task = matmul_task(16, 16, 16)
    inputs = [MeasureInput(task, s) for s in default_variants(task, 4, seed=4)]
    devices = make_devices("per-core", cores)
    with LocalBuilder(workers=2) as b, LocalRunner(settings=settings, devices=devices) as r:
        for w, core in zip(r.workers, cores):
            assert w.call(os.sched_getaffinity, (0,), 30.0) == {core}
        pairs = Measurer(builder=b, runner=r).measure(inputs)
    assert all(res.is_valid for _, res in pairs)
    used = {res.settings["device"] for _, res in pairs}
    assert used <= {d.name for d in devices}
    assert all(res.settings["threads"] == 1 for _, res in pairs)


def test_device_kinds():
    assert make_devices("default", (0, 1, 2)) == make_devices("default", (0, 1, 2))
    assert [d.cores for d in make_devices("per-core", (0, 3))] == [(0,), (3,)]
    with pytest.raises(ValueError, match="--devices"):
        make_devices("gpu")


def test_a_worker_that_died_at_start_reports_why_and_closes():
    from measure_faults import exit_at_start

    from compiler.measure.worker import Worker, WorkerCrash

    w = Worker(exit_at_start)
    with pytest.raises(WorkerCrash, match=r"exited \(code 3\)"):
        w.wait_ready(timeout_s=60)
    w.start()  # a replacement, which dies too
    assert w.conn.poll(60)  # its end of the pipe closed: it has exited
    w.close()  # closing must not trip over the dead process
    assert w.restarts == 1
