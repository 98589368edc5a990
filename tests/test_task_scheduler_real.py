"""The scheduler end to end on zoo:mlp: sketch policies sharing one XGBoost cost
model, a real Measurer (builder and runner processes), a temporary SQLite
records database; then a resumed scheduler picks up the run. About 6 s here."""

from __future__ import annotations

import math

import pytest

from compiler.cost_model import create as create_model
from compiler.measure import LocalBuilder, LocalRunner, Measurer, MeasureSettings
from compiler.policies import create as create_policy
from compiler.records import SQLiteStore
from compiler.task import SearchTask
from compiler.task_scheduler import DECISION_LOG_KEYS, TaskScheduler, read_decision_log
from models.load import load_graph
from models.partition import partition

FAST = MeasureSettings(number=1, repeat=2, min_repeat_ms=1.0, run_timeout_s=5.0, threads=1)
PER_ROUND = 4


def mlp_scheduler(log_path) -> TaskScheduler:
    part = partition(load_graph("zoo:mlp"))
    tasks = [SearchTask(f"task{t.id}_{'+'.join(t.ops)}", t.dag, t.weight) for t in part.tasks]
    model = create_model("xgb", seed=0)  # one cost model for every task of the run
    policies = [
        create_policy("sketch", t.dag, model=model, seed=k, cores=1, population=64)
        for k, t in enumerate(tasks)
    ]
    return TaskScheduler(tasks, policies, per_round=PER_ROUND, log_path=log_path)


def test_mlp_tasks_with_sketch_policies_and_a_real_measurer(tmp_path):
    db, log = tmp_path / "records.db", tmp_path / "decisions.jsonl"
    with (
        SQLiteStore(db) as store,
        LocalBuilder(workers=1) as builder,
        LocalRunner(settings=FAST) as runner,
    ):
        measurer = Measurer(builder=builder, runner=runner, store=store)
        sched = mlp_scheduler(log)
        result = sched.tune(measurer, trials=6 * PER_ROUND)
        n = len(sched.tasks)
        assert result.trials == 6 * PER_ROUND == store.count()
        assert all(st.rounds >= 1 and st.is_measured for st in sched.task_states)
        assert math.isfinite(result.objective_s) and result.objective_s > 0
        lines = read_decision_log(log)
        assert [line["choice"] for line in lines[:n]] == ["warmup"] * n
        assert all(set(DECISION_LOG_KEYS) <= set(line) for line in lines)
        assert lines[-1]["f_s"] == pytest.approx(result.objective_s)
        assert all(line["build_s"] > 0 and line["measure_s"] > 0 for line in lines)

        again = mlp_scheduler(log)
        assert again.resume(store, measurer.target.target) == 6 * PER_ROUND
        assert [st.history for st in again.task_states] == [st.history for st in sched.task_states]
        assert again.next_task() == sched.next_task()
