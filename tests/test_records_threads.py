"""Records carry the thread count they were measured at, and every lookup filters on
it: a 2-thread run never builds its network from 1-thread timings (nor the reverse)."""

from __future__ import annotations

import json
import sqlite3

from candidates import default_variants, matmul_task

from compiler.measure import LocalBuilder, LocalRunner, MeasureInput, Measurer, MeasureSettings
from compiler.records import (
    MeasureRecord,
    SQLiteStore,
    host_target_info,
    target_threads,
    threads_target,
)
from compiler.schedule.steps import steps_to_json
from models.tuned import RecordSchedules, record_schedules

BASE = "llvm -mcpu=test -num-cores=2"


def record(key: str, target: str, cost: float, threads: int | None, steps=None) -> MeasureRecord:
    settings = {} if threads is None else {"threads": threads}
    steps = steps if steps is not None else [{"kind": "test", "cost": cost}]
    return MeasureRecord(key, target, steps, (cost,), None, 1.0, settings=settings)


def test_the_thread_count_is_part_of_the_target_key():
    assert threads_target(BASE, 1) == BASE
    assert threads_target(BASE, 2) == f"{BASE} -threads=2"
    assert [target_threads(threads_target(BASE, t)) for t in (1, 2, 16)] == [1, 2, 16]
    one, two = host_target_info(1), host_target_info(2)
    assert two.target == f"{one.target} -threads=2"
    assert (two.cpu, two.features, two.cores) == (one.cpu, one.features, one.cores)


def test_lookups_at_one_thread_skip_records_of_two_and_the_reverse(tmp_path):
    with SQLiteStore(tmp_path / "r.db") as db:
        db.add([
            record("w", BASE, 3e-3, 1),
            record("w", threads_target(BASE, 2), 1e-3, 2),
            record("w", BASE, 2e-3, 2),  # an import of an older file: keyed by its settings
        ])  # fmt: skip
        assert db.best("w", BASE).costs_s == (3e-3,)
        assert db.best("w", threads_target(BASE, 2)).costs_s == (1e-3,)
        assert len(db.measured("w", threads_target(BASE, 2))) == 2
        assert len(db.measured("w", BASE)) == 1
        assert db.best("w", threads_target(BASE, 4)) is None


def test_a_version_1_database_is_migrated_by_each_record_settings(tmp_path):
    path = tmp_path / "old.db"
    with SQLiteStore(path) as db:
        db.add([record("w", BASE, 3e-3, 1), record("v", BASE, 5e-3, None)])
    rows = [("w", BASE, "two", json.dumps([{"k": 2}]), json.dumps([1e-3]), 1e-3, 2.0,
             json.dumps({"threads": 2}))]  # fmt: skip
    con = sqlite3.connect(path)  # what a version 1 store wrote for a 2-thread record
    con.executemany(
        "INSERT INTO measurements (workload_key, target, steps_hash, steps, costs_s, "
        "mean_cost_s, timestamp, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()
    with SQLiteStore(path) as db:
        assert db.best("w", BASE).costs_s == (3e-3,)  # was the 2-thread 1e-3 before
        assert db.best("w", threads_target(BASE, 2)).costs_s == (1e-3,)
        assert db.best("v", BASE).costs_s == (5e-3,)  # no thread count: measured on 1
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
    con.close()


def test_a_two_thread_measurement_is_stored_and_served_at_two_threads_only(tmp_path):
    task = matmul_task(32, 32, 32)
    fast, slow = default_variants(task, 2, seed=5)
    settings = MeasureSettings(threads=2, number=1, repeat=2, min_repeat_ms=1.0)
    with (
        SQLiteStore(tmp_path / "r.db") as db,
        LocalBuilder() as builder,
        LocalRunner(settings=settings) as runner,
    ):
        pairs = Measurer(builder=builder, runner=runner, store=db).measure(
            [MeasureInput(task, fast)]
        )
        assert pairs[0][1].is_valid, pairs[0][1].error_msg
        two, one = host_target_info(2).target, host_target_info(1).target
        stored = list(db.records(task.workload_key))
        assert [(r.target, r.settings["threads"]) for r in stored] == [(two, 2)]
        assert db.measured(task.workload_key, one) == set()
        db.add([record(task.workload_key, one, 1.0, 1, steps_to_json(slow.steps))])
    by_threads = {t: record_schedules(tmp_path / "r.db", threads=t) for t in (1, 2)}
    for threads, state in ((1, slow), (2, fast)):
        schedules: RecordSchedules = by_threads[threads]
        served = schedules(_tuning_task(task))
        assert steps_to_json(served.steps) == steps_to_json(state.steps), threads
        schedules.store.close()


def _tuning_task(task):
    """The records callback takes a partition's task; it reads the DAG and the key."""
    from types import SimpleNamespace

    return SimpleNamespace(dag=task.dag, workload_key=task.workload_key)
