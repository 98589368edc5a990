"""A real recorded run for the report tests: zoo:mlp partitioned, each task tuned for a
few trials with the random policy and a real Measurer into a temporary SQLite DB, the
scheduler's decision log (round-robin rounds of the real task scheduler), run.json.

`tuned_run()` builds it once per test session (cached; removed at exit) and returns a
read-only directory: tests copy it (`run_copy`) before writing reports into it.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import json
import shutil
import tempfile
from pathlib import Path

from compiler.measure import LocalBuilder, LocalRunner, Measurer, MeasureSettings
from compiler.measure.peak import Peak
from compiler.policies import create as create_policy
from compiler.records import SQLiteStore, host_target_info
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler
from models.load import load_graph
from models.partition import partition

MODEL = "zoo:mlp"
ROUNDS_PER_TASK = 2
PER_ROUND = 4
FAST = MeasureSettings(number=1, repeat=2, min_repeat_ms=1.0, run_timeout_s=5.0, threads=1)
PEAK = Peak(gflops=200.0, gbytes_s=15.0)  # fixed, so tests need no peak measurement


def search_tasks() -> tuple[list, list[SearchTask]]:
    part = partition(load_graph(MODEL))
    tasks = [SearchTask(f"task{t.id}_{'+'.join(t.ops)}", t.dag, t.weight) for t in part.tasks]
    return part.tasks, tasks


def task_rows(part_tasks: list, tasks: list[SearchTask]) -> list[dict]:
    return [
        {"id": t.id, "name": s.name, "workload_key": t.workload_key, "ops": list(t.ops),
         "shapes": t.shapes, "weight": t.weight, "flops": t.flops}
        for t, s in zip(part_tasks, tasks)
    ]  # fmt: skip


def _tune(tasks: list[SearchTask], measurer: Measurer, log_path: Path) -> None:
    """Round-robin rounds of the real task scheduler, which writes the decision log."""
    policies = [create_policy("random", t.dag, seed=k, cores=1) for k, t in enumerate(tasks)]
    sched = TaskScheduler(
        tasks, policies, strategy="round-robin", per_round=PER_ROUND, log_path=log_path
    )
    sched.tune(measurer, trials=PER_ROUND * ROUNDS_PER_TASK * len(tasks))


def make_run(root: Path) -> Path:
    """Tune zoo:mlp for real into root/run (records.db, decisions.jsonl, run.json)."""
    run = root / "run"
    run.mkdir(parents=True)
    part_tasks, tasks = search_tasks()
    started = dt.datetime.now().isoformat(timespec="seconds")
    with (
        SQLiteStore(run / "records.db") as store,
        LocalBuilder(workers=1) as builder,
        LocalRunner(settings=FAST) as runner,
    ):
        measurer = Measurer(builder=builder, runner=runner, store=store)
        _tune(tasks, measurer, run / "decisions.jsonl")
    meta = {
        "model": MODEL, "model_sha256": "0" * 64, "records": "records.db",
        "target": host_target_info().target, "policy": "random", "scheduler": "round-robin",
        "threads": 1, "trials": PER_ROUND * ROUNDS_PER_TASK * len(tasks), "started": started,
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "tasks": task_rows(part_tasks, tasks),
    }  # fmt: skip
    (run / "run.json").write_text(json.dumps(meta, indent=1))
    return run


@functools.cache
def tuned_run() -> Path:
    """The session's recorded run (built on first use)."""
    root = Path(tempfile.mkdtemp(prefix="sketchtune-report-"))
    atexit.register(shutil.rmtree, root, True)
    return make_run(root)


def run_copy(dest: Path) -> Path:
    """A writable copy of the recorded run at `dest`."""
    shutil.copytree(tuned_run(), dest)
    return dest
