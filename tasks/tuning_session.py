"""One tuning run's live objects in the flow process: the tasks, their search
policies, the shared cost model, the task scheduler and the records store.

Prefect tasks get the session's key and small arguments and find the session
here; nothing large travels through Prefect. Builds and timings do not need the
session: they run on whatever process the task runner picks
(tasks/prefect_measure.py); records are written here, in the flow's process, only.
The rounds themselves are the one tuning loop (compiler/task_scheduler/loop.py).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from compiler.cost_model import create as create_model
from compiler.cost_model import warm_start
from compiler.measure import Measurer
from compiler.records import SQLiteStore, host_target_info
from compiler.search.policy import SearchPolicy
from compiler.task import SearchTask
from compiler.task_scheduler import SchedulerResult, TaskScheduler, round_size
from models.network import default_schedule_for
from models.partition import Partition, TuningTask
from tasks import phase_clock
from tasks.options import NO_TRIAL_LIMIT, TuneOptions

# Ansor's round size is min(per_round, trials / tasks); at least this many candidates,
# since smaller rounds cost more in model retraining and Prefect task runs than they save
MIN_ROUND = 8


def task_name(t: TuningTask) -> str:
    return f"t{t.id}:" + "+".join(t.ops)


class TuningSession:
    """The live state of one run (see the module docstring)."""

    def __init__(self, options: TuneOptions, part: Partition, model_digest: str) -> None:
        self.options, self.partition, self.model_digest = options, part, model_digest
        self.key = uuid.uuid4().hex
        self.out_dir = Path(options.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        Path(options.records).parent.mkdir(parents=True, exist_ok=True)
        self.store = SQLiteStore(options.records)
        self.target = host_target_info(options.threads)
        self.tasks = [SearchTask(task_name(t), t.dag, t.weight) for t in part.tasks]
        self.cost_model = create_model("random" if options.policy == "random" else "xgb")
        # the model starts from every workload measured on this CPU (DB.features.npz)
        self.warm: warm_start.WarmStart | None = None
        if options.warm_start and options.policy != "random":
            self.warm = warm_start.attach(self.cost_model, options.records, self.target.target)
            print(self.warm.start_line(), file=sys.stderr)
        self.policies: list[SearchPolicy | None] = [None] * len(self.tasks)
        self.scheduler: TaskScheduler | None = None
        self.new_trials = 0
        self.resumed = 0
        self.started = time.time()
        self.stop_requested = False
        self.stop_reason = ""  # why the tuning loop ended (loop.SchedulerResult)
        self.listeners: list[Callable[[TuningSession, dict], None]] = []
        self.fallbacks: list[str] = []

    # ---------------------------------------------------------------- set-up
    def make_policy(self, idx: int) -> int:
        """Create task idx's search policy (its sketches); the number of sketches."""
        from compiler.policies import policy_for_task

        o = self.options
        policy = policy_for_task(
            o.policy, self.tasks[idx].dag, model=self.cost_model, tuner=o.tuner,
            seed=o.seed + idx, warn=self.fallbacks.append, name=self.tasks[idx].name,
            cores=o.threads,  # parallel loops sized for the threads candidates run on
        )  # fmt: skip
        self.policies[idx] = policy
        return len(getattr(policy, "sketches", ()) or ())

    def start_scheduler(self) -> int:
        """Build the task scheduler and resume it from the records; records restored."""
        o = self.options
        policies = [p for p in self.policies if p is not None]
        if len(policies) != len(self.tasks):
            raise RuntimeError("every task needs its policy before the scheduler starts")
        self.scheduler = TaskScheduler(
            self.tasks, policies, strategy=o.scheduler,
            per_round=round_size(o.trials, len(self.tasks), o.per_round, MIN_ROUND),
            early_stopping=o.early_stopping, seed=o.seed,
            log_path=self.out_dir / "decisions.jsonl",
            # the network's default schedule is measured first: tuning never makes a task slower
            baselines=[default_schedule_for(t) for t in self.partition.tasks],
        )  # fmt: skip
        self.resumed = self.scheduler.resume(self.store, self.target.target)
        return self.resumed

    # ---------------------------------------------------------------- rounds
    def tune(self, measurer: Measurer, *, ahead: bool) -> SchedulerResult:
        """The tuning loop until the budget, the scheduler or Ctrl-C stops it; every
        round's line goes to the listeners (the live table, artifacts)."""
        assert self.scheduler is not None

        def on_round(line: dict) -> None:
            self.new_trials += line["trials"]
            for listener in self.listeners:
                listener(self, line)

        return self.scheduler.tune(
            measurer, self.options.trials, on_round, ahead=ahead,
            should_stop=lambda: self.stop_requested, clock=phase_clock.phase,
            time_budget_s=None if self.options.minutes is None else self.options.minutes * 60,
        )  # fmt: skip

    # ---------------------------------------------------------------- views
    def table(self) -> list[dict]:
        """The tuning table: one row per task (docs/pipeline.md#live-table)."""
        rows = []
        for i, (t, task) in enumerate(zip(self.partition.tasks, self.tasks)):
            st = self.scheduler.task_states[i] if self.scheduler else None
            best = st.best_cost_s if st else math.inf
            rows.append({
                "id": t.id, "task": task.name, "flops": task.flop_count, "weight": t.weight,
                "latency_ms": best * 1e3 if math.isfinite(best) else None,
                "gflops": task.flop_count / best / 1e9 if math.isfinite(best) else None,
                "trials": st.trials if st else 0, "done": bool(st and st.done),
            })  # fmt: skip
        return rows

    @property
    def estimated_ms(self) -> float | None:
        f = self.scheduler.objective_value if self.scheduler else math.inf
        return f * 1e3 if math.isfinite(f) else None

    def write_run_json(self, finished: bool) -> Path:
        """DIR/run.json, the run directory's index (reports read it)."""
        o = self.options
        info = {
            "model": o.model, "model_sha256": self.model_digest,
            "records": str(Path(o.records).resolve()), "target": self.target.target,
            "policy": o.policy, "scheduler": o.scheduler, "threads": o.threads,
            "trials": self.new_trials, "resumed": self.resumed,
            "trials_requested": None if o.trials == NO_TRIAL_LIMIT else o.trials,
            "minutes": o.minutes,
            "options": asdict(o),
            "started": _iso(self.started), "finished": _iso(time.time()) if finished else None,
            "tasks": [
                {"id": t.id, "name": task_name(t), "workload_key": t.workload_key,
                 "ops": list(t.ops), "shapes": t.shapes, "weight": t.weight, "flops": t.flops}
                for t in self.partition.tasks
            ],
        }  # fmt: skip
        path = self.out_dir / "run.json"
        path.write_text(json.dumps(info, indent=1))
        return path

    def close(self) -> None:
        if hasattr(self.cost_model, "save"):
            try:
                self.cost_model.save(self.out_dir / "cost_model.json")
            except (OSError, ValueError, TypeError) as err:
                print(f"warning: cost model not saved: {err}", file=sys.stderr)
        if self.warm is not None:  # its training data, for the next run on this CPU
            print(self.warm.save(self.cost_model), file=sys.stderr)
        self.store.close()
        SESSIONS.pop(self.key, None)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


SESSIONS: dict[str, TuningSession] = {}


def open_session(options: TuneOptions, partition_path: str | Path, digest: str) -> TuningSession:
    from tasks.partition_cache import load_partition

    session = TuningSession(options, load_partition(partition_path), digest)
    SESSIONS[session.key] = session
    return session


def get_session(key: str) -> TuningSession:
    try:
        return SESSIONS[key]
    except KeyError:
        raise RuntimeError(f"no tuning session {key} in this process (pid {os.getpid()})") from None
