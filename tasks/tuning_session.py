"""One tuning run's live objects in the flow process: the tasks, their search
policies, the shared cost model, the task scheduler and the records store.

Prefect tasks get the session's key and small arguments and find the session
here; nothing large travels through Prefect (STYLE.md §10). Builds and timings
do not need the session: they run on whatever process the task runner picks
(tasks/device.py); records are written here, in the flow's process, only.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from compiler.cost_model import create as create_model
from compiler.measure import BuildResult, MeasureInput, Measurer, MeasureResult, MeasureSettings
from compiler.measure.devices import make_devices
from compiler.records import SQLiteStore, host_target_info
from compiler.schedule.state import State
from compiler.search.ahead import AheadTimes, SearchAhead, core_idle_while_timing
from compiler.search.policy import SearchPolicy
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler, round_size
from models.network import default_schedule_for
from models.partition import Partition, TuningTask
from tasks.phase_clock import phase

POLICIES = ("sketch", "template", "random")
SCHEDULERS = ("gradient", "round-robin")


class TuneInputError(ValueError):
    """A bad option of `tune` (the CLI exits with code 2)."""


@dataclass(frozen=True)
class RunOptions:
    """Everything a tuning run is asked to do (the flow's parameters, checked)."""

    model: str
    trials: int
    records: str
    out_dir: str
    policy: str = "sketch"
    tuner: str = "xgb"
    scheduler: str = "gradient"
    threads: int = 1
    devices: str = "default"
    seed: int = 0
    per_round: int = 64
    early_stopping: int | None = None
    search_ahead: bool = True  # when the timing leaves a core idle (compiler/search/ahead.py)

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise TuneInputError(f"--trials must be >= 0, got {self.trials}")
        if self.per_round < 1:
            raise TuneInputError(f"--per-round must be >= 1, got {self.per_round}")
        if self.threads < 1:
            raise TuneInputError(f"--threads must be >= 1, got {self.threads}")
        if self.policy not in POLICIES:
            raise TuneInputError(
                f"--policy must be one of {', '.join(POLICIES)}, got {self.policy!r}"
            )
        if self.scheduler not in SCHEDULERS:
            raise TuneInputError(
                f"--scheduler must be gradient or round-robin, got {self.scheduler!r}"
            )
        if self.early_stopping is not None and self.early_stopping < 1:
            raise TuneInputError(f"--early-stopping must be >= 1, got {self.early_stopping}")


def task_name(t: TuningTask) -> str:
    return f"t{t.id}:" + "+".join(t.ops)


@dataclass
class PendingRound:
    """Candidates proposed for one task, waiting for their builds and timings."""

    task: int
    inputs: list[MeasureInput]
    search_s: float
    started: float


class TuningSession:
    """The live state of one run (see the module docstring)."""

    def __init__(self, options: RunOptions, part: Partition, model_digest: str) -> None:
        self.options, self.partition, self.model_digest = options, part, model_digest
        self.key = uuid.uuid4().hex
        self.out_dir = Path(options.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        Path(options.records).parent.mkdir(parents=True, exist_ok=True)
        self.store = SQLiteStore(options.records)
        self.target = host_target_info()
        self.tasks = [SearchTask(task_name(t), t.dag, t.weight) for t in part.tasks]
        self.cost_model = create_model("random" if options.policy == "random" else "xgb")
        self.policies: list[SearchPolicy | None] = [None] * len(self.tasks)
        self.scheduler: TaskScheduler | None = None
        self.settings = MeasureSettings(threads=options.threads)
        # builds and timings go elsewhere (tasks/device.py); this one records results
        self.measurer = Measurer(builder=_NoBuilder(), runner=_NoRunner(), store=self.store)
        self.pending: PendingRound | None = None
        self.new_trials = 0
        self.resumed = 0
        self.started = time.time()
        self.stop_requested = False
        self.listeners: list[Callable[[TuningSession, dict], None]] = []
        self.fallbacks: list[str] = []

    # ---------------------------------------------------------------- set-up
    def make_policy(self, idx: int) -> int:
        """Create task idx's search policy (its sketches); the number of sketches."""
        from compiler.search.policy import policy_for_task

        o = self.options
        policy = policy_for_task(
            o.policy, self.tasks[idx].dag, model=self.cost_model, tuner=o.tuner,
            seed=o.seed + idx, warn=self.fallbacks.append, name=self.tasks[idx].name,
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
            self.tasks, policies, strategy=o.scheduler, per_round=self.per_round,
            early_stopping=o.early_stopping, seed=o.seed,
            log_path=self.out_dir / "decisions.jsonl",
            # the network's default schedule is measured first: tuning never makes a task slower
            baselines=[default_schedule_for(t) for t in self.partition.tasks],
        )  # fmt: skip
        self.resumed = self.scheduler.resume(self.store, self.target.target)
        return self.resumed

    # ---------------------------------------------------------------- rounds
    @property
    def per_round(self) -> int:
        """Ansor's round size, min(per_round, trials / tasks), but at least 8 candidates
        (smaller rounds cost more in model retraining and Prefect task runs than they save)."""
        o = self.options
        return max(min(o.per_round, 8), round_size(o.trials, len(self.tasks), o.per_round))

    @property
    def remaining(self) -> int:
        return max(0, self.options.trials - self.new_trials)

    def next_task(self) -> int | None:
        if self.stop_requested or self.remaining == 0 or self.scheduler is None:
            return None
        return self.scheduler.next_task()

    def propose(self, idx: int) -> int:
        """Ask task idx's policy for the next candidates (not yet measured); their count."""
        assert self.scheduler is not None
        start = time.perf_counter()
        states = self.scheduler.propose(idx, min(self.per_round, self.remaining))
        policy = self.scheduler.policies[idx]  # a template policy's config goes with its record
        inputs = self.measurer.fresh(
            [MeasureInput(self.tasks[idx], s, policy.meta_for(s)) for s in states]
        )
        self.measurer.ensure_references(inputs, _reference_builder())
        self.pending = PendingRound(idx, inputs, time.perf_counter() - start, time.time())
        return len(inputs)

    def chunks(self, n_chunks: int) -> list[list[MeasureInput]]:
        """The pending candidates cut into at most n_chunks nearly equal chunks."""
        inputs = self.pending.inputs if self.pending else []
        n = max(1, min(n_chunks, len(inputs)))
        return [inputs[k::n] for k in range(n)] if inputs else []

    def searches_ahead(self, n_workers: int) -> bool:
        """Whether the next round's search runs while a round is timed: asked for
        (`search_ahead`), timed in this process (one measuring worker), and the
        timing leaves a core idle (compiler/search/ahead.py)."""
        o = self.options
        return (
            o.search_ahead
            and n_workers == 1
            and core_idle_while_timing(o.threads, make_devices(o.devices))
        )

    def record(
        self,
        chunks: Sequence[Sequence[MeasureInput]],
        builds: Sequence[Sequence[BuildResult]],
        run: Callable[[list], list[MeasureResult]],
        *,
        build_s: float,
        ahead: bool = False,
    ) -> dict:
        """Time the built chunks with `run`, store every result, tell the scheduler.
        With `ahead` (the timing runs on this machine, one candidate at a time), the
        task likely to come next searches its next round meanwhile
        (compiler/search/ahead.py)."""
        assert self.pending is not None and self.scheduler is not None
        inputs = [i for c in chunks for i in c]
        flat = [b for c in builds for b in c]
        start = time.perf_counter()

        def run_requests(requests, on_result):
            for k, result in enumerate(run(list(requests))):
                on_result(k, result)

        n_next = min(self.per_round, self.remaining - len(inputs))
        prepare = self.scheduler.search_ahead(
            self.pending.task, [i.state for i in inputs], n_next
        ) if ahead else None  # fmt: skip
        searching = SearchAhead(prepare) if prepare is not None else None
        if searching is not None:
            searching.start()
        try:
            with phase("measure"):  # the timings and writing their records
                pairs = self.measurer.run(inputs, flat, run_requests)
            measure_s = time.perf_counter() - start
        finally:
            with phase("search"):  # what is left of the search run beside the timing
                times = searching.finish() if searching is not None else AheadTimes()
        states: list[State] = [inp.state for inp, _ in pairs]
        costs = [r.mean_cost_s if r.is_valid else None for _, r in pairs]
        with phase("learn"):  # the policy and the cost model take the results in
            line = self.scheduler.record(
                self.pending.task, states, costs,
                search_s=self.pending.search_s + times.waited_s, build_s=build_s,
                measure_s=measure_s, ahead_s=times.ran_s,
            )  # fmt: skip
        self.new_trials += len(pairs)
        self.pending = None
        for listener in self.listeners:
            listener(self, line)
        return line

    def skip_round(self) -> dict:
        """A round whose candidates were all measured before: tell the scheduler anyway."""
        assert self.pending is not None and self.scheduler is not None
        line = self.scheduler.record(
            self.pending.task, [], [], search_s=self.pending.search_s, build_s=0.0, measure_s=0.0
        )
        self.pending = None
        return line

    # ---------------------------------------------------------------- views
    def table(self) -> list[dict]:
        """The tuning table: one row per task (STYLE.md §18)."""
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
            "trials": self.new_trials, "trials_requested": o.trials, "resumed": self.resumed,
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
        self.store.close()
        SESSIONS.pop(self.key, None)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class _NoBuilder:
    """The session's measurer never builds on its own (builds go through tasks/device.py)."""

    def build(self, inputs):
        raise RuntimeError("the session builds through tasks/device.py")

    build_references = build

    def close(self) -> None:
        return None


class _NoRunner(_NoBuilder):
    settings = MeasureSettings()

    def run(self, requests, on_result=None):
        raise RuntimeError("the session measures through tasks/device.py")


def _reference_builder():
    """This process's builder for reference programs (slot -1 of tasks/device.py)."""
    from tasks.device import local_builder

    return local_builder(-1)


SESSIONS: dict[str, TuningSession] = {}


def open_session(options: RunOptions, partition_path: str | Path, digest: str) -> TuningSession:
    from tasks.partition_cache import load_partition

    session = TuningSession(options, load_partition(partition_path), digest)
    SESSIONS[session.key] = session
    return session


def get_session(key: str) -> TuningSession:
    try:
        return SESSIONS[key]
    except KeyError:
        raise RuntimeError(f"no tuning session {key} in this process (pid {os.getpid()})") from None
