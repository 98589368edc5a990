"""Resume from a real SQLite records database: a fresh scheduler restores every
task's trials, rounds, best latency and history, and decides as the stopped
one would have."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from test_task_scheduler import CURVES, TARGET, WEIGHTS, curve_measurer, make_tasks, scheduler

from compiler.records import SQLiteStore
from compiler.task_scheduler import read_decision_log

OPTIONS = {"early_stopping": 24, "global_early_stopping": 400, "eps_greedy": 0.2, "seed": 3}


def snapshot(sched):
    return (
        [dataclasses.astuple(st) for st in sched.task_states],
        sched.rounds,
        sched.total_trials,
        sched.global_stale_trials,
        [g.to_json() for g in sched.gradients()],
        [p.best_cost_s for p in sched.policies],
    )


def decisions(result):
    return [
        (line["task"], line["choice"], line["trials"], line["gradients"]) for line in result.rounds
    ]


@pytest.fixture
def stopped_run(tmp_path):
    """A run stopped after 200 trials: its scheduler, store and decision log."""
    tasks = make_tasks(WEIGHTS)
    store = SQLiteStore(tmp_path / "records.db")
    log = tmp_path / "decisions.jsonl"
    sched = scheduler(tasks, log_path=log, **OPTIONS)
    result = sched.tune(curve_measurer(tasks, CURVES, store), 200)
    assert result.trials == 200 and result.resumed == 0
    assert sched.task_states[2].done  # the plateaued task stopped before the interruption
    yield tasks, sched, store, log
    store.close()


def resumed(tasks, store, log_path):
    fresh = scheduler(tasks, log_path=log_path, **OPTIONS)
    restored = fresh.resume(store, TARGET.target)
    return fresh, restored


def continue_both(tasks, before, after):
    """Both schedulers go on for 160 trials against store-less measurers."""
    got_before = before.tune(curve_measurer(tasks, CURVES), 160)
    got_after = after.tune(curve_measurer(tasks, CURVES), 160)
    assert got_after.resumed == 0  # already resumed by hand
    return decisions(got_before), decisions(got_after)


def test_resume_with_the_decision_log_restores_state_and_decisions(stopped_run, tmp_path):
    tasks, before, store, log = stopped_run
    copy = tmp_path / "resumed.jsonl"
    shutil.copy(log, copy)
    after, restored = resumed(tasks, store, copy)
    assert restored == 200
    assert snapshot(after) == snapshot(before)
    assert after.next_task() == before.next_task()
    ours, theirs = continue_both(tasks, before, after)
    assert ours == theirs
    lines = read_decision_log(copy)
    assert [line["round"] for line in lines] == list(range(len(lines)))  # appended, numbered on
    assert lines[25]["wall_s"] >= lines[24]["wall_s"]  # wall time continues


def test_resume_without_a_log_cuts_records_into_rounds_of_per_round(stopped_run):
    tasks, before, store, _ = stopped_run
    after, restored = resumed(tasks, store, None)
    assert restored == 200 and snapshot(after) == snapshot(before)
    ours, theirs = continue_both(tasks, before, after)
    assert ours == theirs


def test_resume_after_a_kill_between_measuring_and_logging(stopped_run, tmp_path):
    tasks, before, store, log = stopped_run
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    after, _ = resumed(tasks, store, cut)  # the unlogged round comes from the records
    assert snapshot(after) == snapshot(before)
    assert after.next_task() == before.next_task()


def test_a_log_of_another_database_is_not_trusted(stopped_run, tmp_path):
    tasks, before, store, log = stopped_run
    other = tmp_path / "other.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    other.write_text("".join(lines + lines))  # claims twice the trials the records hold
    with pytest.warns(UserWarning, match="does not match the records"):
        after, _ = resumed(tasks, store, other)
    assert snapshot(after) == snapshot(before)  # full rounds: per_round chunks agree


def test_tune_resumes_from_the_measurers_store_by_itself(stopped_run):
    tasks, _before, store, log = stopped_run
    again = scheduler(tasks, log_path=log, **OPTIONS)
    result = again.tune(curve_measurer(tasks, CURVES, store), 40)
    assert result.resumed == 200 and result.trials == 40 and result.total_trials == 240
    assert store.count() == 240  # nothing measured twice
    with pytest.raises(RuntimeError, match="already recorded"):
        again.resume(store, TARGET.target)


def test_records_of_other_targets_are_left_out(stopped_run):
    tasks, _, store, _ = stopped_run
    fresh = scheduler(tasks, **OPTIONS)
    assert fresh.resume(store, "llvm -mcpu=other") == 0
    assert all(st.rounds == 0 for st in fresh.task_states) and fresh.next_task() == 0
