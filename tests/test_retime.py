"""Keep only what is really faster: finalists re-timed side by side in a runner, and a
network that takes the re-timing's winner over a record whose tuning time lied."""

from __future__ import annotations

import statistics

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.measure import (
    LocalRunner,
    MeasureInput,
    MeasureResult,
    MeasureSettings,
    RunRequest,
    to_record,
)
from compiler.records import SQLiteStore, host_target_info
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.task import SearchTask
from compiler.te.dag import ComputeDAG
from models.load import load_graph
from models.network import default_schedule_for
from models.partition import partition
from models.retime import retime_tasks
from models.tuned import RecordSchedules


def test_side_by_side_times_every_finalist_in_every_round():
    a, b = te.placeholder((128, 128), name="A"), te.placeholder((128, 128), name="B")
    dag = ComputeDAG([ops.matmul(a, b)])
    fast, slow = build(lower(default_schedule(dag))), build(lower(State.initial(dag)))
    requests = [RunRequest(art, None, 2, dag.workload_key) for art in (fast, slow)]
    with LocalRunner(settings=MeasureSettings(threads=1, min_repeat_ms=2.0)) as runner:
        times = runner.side_by_side(requests, rounds=3)
    assert [len(t) for t in times] == [3, 3]
    assert statistics.median(times[1]) > 2 * statistics.median(times[0]) > 0


def test_the_network_takes_the_retimed_winner_not_a_record_that_lied(tmp_path):
    part = partition(load_graph("zoo:mlp"))
    task = part.tasks[0]
    naive = State.initial(task.dag)  # scalar loops: far slower than the default schedule
    target = host_target_info()
    lie = to_record(MeasureInput(SearchTask("t0", task.dag), naive), MeasureResult((1e-9,)), target)
    with SQLiteStore(tmp_path / "r.db") as store:
        store.add([lie])
        schedules = RecordSchedules(store, target.target)
        assert schedules(task).steps == naive.steps  # the best tuning record, a lie
        results = retime_tasks(part.tasks, store, finalists=2, rounds=3)
        assert [r.task_id for r in results] == [task.id]  # the only task with records
        assert not results[0].tuned_wins and results[0].contenders == 2
        assert results[0].winner_s == results[0].default_s
        assert schedules(task).steps == default_schedule_for(task).steps
        newer = to_record(
            MeasureInput(SearchTask("t0", task.dag), naive), MeasureResult((2e-9,)), target
        )
        store.add([newer])  # tuned again since the re-timing: its best counts again
        assert schedules(task).steps == naive.steps
