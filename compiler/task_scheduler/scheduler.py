"""TaskScheduler: which task of a network gets the next round of trials.

The run is a sequence of rounds. `next_task` picks a task (the strategy),
`propose` asks its search policy for candidates (timed as search time), the
caller builds and measures them, and `record` hands the results back: the
policy learns, the task's history and f move on, one decision-log line is
written. `tune` is that loop with a Measurer (loop.py): every tuning run, from
one op to a whole network in the Prefect flow, goes through it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from compiler.measure import Measurer
from compiler.records import RecordStore
from compiler.schedule.state import State
from compiler.search.policy import SearchPolicy
from compiler.task import SearchTask
from compiler.task_scheduler import loop
from compiler.task_scheduler.decision_log import DecisionLog, finite_or_none, read_decision_log
from compiler.task_scheduler.gradient import (
    FORWARD_KINDS,
    GradientConfig,
    TaskGradient,
    task_gradients,
)
from compiler.task_scheduler.loop import SchedulerResult
from compiler.task_scheduler.objective import Objective, chain_gradients, weighted_latency
from compiler.task_scheduler.resume import plan_rounds, task_records
from compiler.task_scheduler.similarity import similarity_groups
from compiler.task_scheduler.strategy import (
    ROUND_ROBIN,
    STRATEGIES,
    gradient_task,
    round_robin_task,
)
from compiler.task_scheduler.task_state import (
    EXHAUSTED,
    GLOBAL_EARLY_STOPPING,
    TaskState,
)

MANUAL = "manual"  # choice label of a round recorded without asking next_task


@dataclass
class _Decision:
    task: int
    choice: str
    gradients: list[TaskGradient]


class TaskScheduler:
    """Spends a trial budget over the tasks of a network (docs/task-scheduler.md#gradient).

    `tasks` and `policies` pair up by index (one cost model may serve every
    policy). `baselines` optionally gives per task a known schedule, such as
    the default one the network runs untuned, measured in the task's first
    round: the task's best, and f, then start no worse than the untuned network.
    The other options are described in the package docstring.

    Example:
        >>> policies = [create_policy("sketch", t.dag, model=model) for t in tasks]  # doctest: +SKIP
        >>> sched = TaskScheduler(tasks, policies, log_path="run/decisions.jsonl")   # doctest: +SKIP
        >>> result = sched.tune(measurer, trials=2000)                               # doctest: +SKIP
        >>> result.objective_s, [s.trials for s in sched.task_states]                # doctest: +SKIP
    """

    def __init__(
        self,
        tasks: Sequence[SearchTask],
        policies: Sequence[SearchPolicy],
        *,
        strategy: str = "gradient",
        per_round: int = 64,
        alpha: float = 0.2,
        beta: float = 2.0,
        backward_window: int = 3,
        short_history: bool = False,
        forward: str = "roofline",
        eps_greedy: float = 0.05,
        early_stopping: int | None = None,
        global_early_stopping: int | None = None,
        objective: Objective | None = None,
        seed: int = 0,
        log_path: str | Path | None = None,
        baselines: Sequence[State | None] | None = None,
    ) -> None:
        _check_options(
            tasks, policies, strategy, per_round, alpha, backward_window, eps_greedy, forward
        )
        if baselines is not None and len(baselines) != len(tasks):
            raise ValueError(f"task scheduler: {len(tasks)} tasks but {len(baselines)} baselines")
        self.tasks, self.policies = list(tasks), list(policies)
        self.baselines = list(baselines) if baselines is not None else [None] * len(self.tasks)
        self.strategy, self.per_round, self.seed = strategy, per_round, seed
        self.eps_greedy = eps_greedy
        self.early_stopping, self.global_early_stopping = early_stopping, global_early_stopping
        self.gradient_config = GradientConfig(alpha, beta, backward_window, short_history, forward)
        self._weights = [t.weight for t in self.tasks] if objective is None else None
        self.objective: Objective = objective or weighted_latency([t.weight for t in self.tasks])
        self.groups = similarity_groups([t.dag for t in self.tasks])
        self.log_path = Path(log_path) if log_path is not None else None
        self._log = DecisionLog(self.log_path) if self.log_path is not None else None
        self.task_states = [TaskState() for _ in self.tasks]
        self.rounds = 0  # global round index of the next round
        self.total_trials = 0
        self.global_stale_trials = 0  # trials since f last improved
        self._best_progress = (len(self.tasks) + 1, math.inf)
        self._started = time.perf_counter()
        self._wall_offset_s = 0.0  # wall time of the run before a resume
        self._last_search_s = [0.0] * len(self.tasks)
        self._decision: _Decision | None = None
        self.resumed = False  # whether `resume` ran (the loop resumes a fresh scheduler)

    # ---------------------------------------------------------------- state

    @property
    def best_costs_s(self) -> list[float]:
        return [st.best_cost_s for st in self.task_states]

    @property
    def objective_value(self) -> float:
        """f in seconds: the objective of every task's best latency (inf while any task
        has no valid measurement, with the default objective)."""
        return float(self.objective(self.best_costs_s))

    @property
    def wall_s(self) -> float:
        """Seconds since the scheduler started, including the run it resumed."""
        return self._wall_offset_s + time.perf_counter() - self._started

    def gradients(self, states: Sequence[TaskState] | None = None) -> list[TaskGradient]:
        """Every task's gradient terms now (the ones the next choice uses), or for
        the task states `states`."""
        states = self.task_states if states is None else states
        chain = chain_gradients(self.objective, [st.best_cost_s for st in states], self._weights)
        flops = [t.flop_count for t in self.tasks]
        return task_gradients(states, flops, self.groups, chain, self.gradient_config)

    # ---------------------------------------------------------------- rounds

    def next_task(self) -> int | None:
        """The index of the task to tune next; None when every task is done.

        Asking twice without a `record` in between gives the same answer.
        """
        grads = self.gradients()
        picked = self._choose(self.task_states, grads, self.rounds)
        if picked is None:
            self._decision = None
            return None
        self._decision = _Decision(picked[0], picked[1], grads)
        return picked[0]

    def _choose(
        self, states: Sequence[TaskState], grads: Sequence[TaskGradient], round_index: int
    ) -> tuple[int, str] | None:
        if self.strategy == ROUND_ROBIN:
            idx = round_robin_task(states)
            return None if idx is None else (idx, ROUND_ROBIN)
        rng = np.random.default_rng([self.seed, round_index])
        return gradient_task(states, grads, rng, self.eps_greedy)

    def search_ahead(
        self, idx: int, states: Sequence[State], n_next: int
    ) -> Callable[[], object] | None:
        """What to search while task `idx`'s `states` are timed: the next round
        (`n_next` candidates) of the task likely to come next; None: nothing."""
        following = self.likely_next_task(idx, len(states)) if n_next > 0 else None
        if following is None:
            return None
        pending = list(states) if following == idx else []
        return partial(self.policies[following].prepare, n_next, pending)

    def likely_next_task(self, idx: int, trials: int) -> int | None:
        """The task `next_task` will pick after a round of `trials` of task `idx`
        that does not lower its best latency (exactly that task, when it does not)."""
        states = copy.deepcopy(self.task_states)
        st = states[idx]
        costs = [st.best_cost_s if st.is_measured else None] * trials
        st.add_round(costs, early_stopping=self.early_stopping)
        picked = self._choose(states, self.gradients(states), self.rounds + 1)
        return None if picked is None else picked[0]

    def propose(self, idx: int, n: int | None = None) -> list[State]:
        """Up to `n` (default per_round) new candidates of task `idx` from its policy;
        in the task's first round its baseline schedule (if given) comes first.

        An empty list marks the task done (its space is exhausted).
        """
        start = time.perf_counter()
        n = self.per_round if n is None else n
        first = self._baseline(idx)[:n]
        more = self.policies[idx].next_candidates(n - len(first)) if n > len(first) else []
        states = first + more  # the measurer skips a proposal equal to the baseline
        self._last_search_s[idx] = time.perf_counter() - start
        if not states:
            self.task_states[idx].stop(EXHAUSTED)
        return states

    def _baseline(self, idx: int) -> list[State]:
        base = self.baselines[idx]
        if base is None or self.task_states[idx].rounds or self.policies[idx].is_measured(base):
            return []
        return [base]

    def record(
        self,
        idx: int,
        states: Sequence[State],
        costs_s: Sequence[float | None],
        *,
        search_s: float | None = None,
        build_s: float = 0.0,
        measure_s: float = 0.0,
        ahead_s: float = 0.0,
    ) -> dict[str, Any]:
        """Hand back the measured candidates of task `idx` (cost None or inf: failed).

        Updates the policy, the task's history and f, writes one decision-log line
        and returns it. `search_s` defaults to the time of the task's last `propose`;
        `ahead_s` is the time searched for a next round while this one was timed.
        """
        if len(states) != len(costs_s):
            raise ValueError(f"record: {len(states)} states but {len(costs_s)} costs")
        decision = self._decision if self._decision and self._decision.task == idx else None
        if decision is None:
            decision = _Decision(idx, MANUAL, self.gradients())
        search_s = self._last_search_s[idx] if search_s is None else search_s
        start = time.perf_counter()
        if states:
            self.policies[idx].note_round(
                search_s=search_s, tuning_s=build_s + measure_s, candidates=len(states)
            )
            self.policies[idx].update(list(states), list(costs_s))
        times = {"search_s": search_s, "build_s": build_s, "measure_s": measure_s,
                 "ahead_s": ahead_s, "learn_s": time.perf_counter() - start}  # fmt: skip
        self._apply_round(idx, costs_s)
        line = self._log_line(idx, decision, costs_s, times)
        if self._log is not None:
            self._log.append(line)
        self.rounds += 1
        self._decision = None
        return line

    def last_search_s(self, idx: int) -> float:
        """Seconds the last `propose` of task `idx` took."""
        return self._last_search_s[idx]

    def replay_round(self, idx: int, costs_s: Sequence[float | None]) -> None:
        """Count a round of task `idx` from its costs alone: the task's history, f
        and the early-stopping counters move on as in `record`, with no candidates,
        no policy update and no log line (replay.py replays strategies this way)."""
        self._apply_round(idx, costs_s)
        self.rounds += 1
        self._decision = None

    def _apply_round(self, idx: int, costs_s: Sequence[float | None]) -> None:
        """The bookkeeping of one round, shared by `record` and `resume`."""
        self.task_states[idx].add_round(costs_s, early_stopping=self.early_stopping)
        self.total_trials += len(costs_s)
        progress = self._progress()
        if progress < self._best_progress:
            self._best_progress, self.global_stale_trials = progress, 0
        else:
            self.global_stale_trials += len(costs_s)
        limit = self.global_early_stopping
        if limit is not None and self.global_stale_trials >= limit:
            for st in self.task_states:
                st.stop(GLOBAL_EARLY_STOPPING)

    def _progress(self) -> tuple[int, float]:
        """What must fall for f to count as improved: first the number of tasks
        without a valid measurement, then f with those at 0 s."""
        best = self.best_costs_s
        unmeasured = sum(not math.isfinite(g) for g in best)
        return unmeasured, float(self.objective([g if math.isfinite(g) else 0.0 for g in best]))

    def _log_line(
        self,
        idx: int,
        decision: _Decision,
        costs_s: Sequence[float | None],
        times: dict[str, float],
    ) -> dict[str, Any]:
        task, st = self.tasks[idx], self.task_states[idx]
        return {
            "round": self.rounds,
            "task": idx,
            "task_name": task.name,
            "workload_key": task.workload_key,
            "choice": decision.choice,
            "trials": len(costs_s),
            "errors": sum(c is None or not math.isfinite(c) for c in costs_s),
            **times,
            "wall_s": self.wall_s,
            "total_trials": self.total_trials,
            "task_best_s": finite_or_none(st.best_cost_s),
            "f_s": finite_or_none(self.objective_value),
            "timestamp": time.time(),
            "gradients": [g.to_json() for g in decision.gradients],
            "task_done": st.done,
            "stop_reason": st.stop_reason,
            "strategy": self.strategy,
        }

    # ---------------------------------------------------------------- resume

    def resume(self, store: RecordStore, target: str) -> int:
        """Restore every task's rounds, trials, best latency and history from the
        records of `target` in `store` (round sizes from the decision log at
        `log_path` when it matches), and feed the records to the policies.

        Call before the first round; returns the number of records restored.
        """
        if self.rounds or self.total_trials:
            raise RuntimeError("resume: the scheduler has already recorded rounds")
        per_task = [task_records(t, store, target) for t in self.tasks]
        lines = read_decision_log(self.log_path) if self.log_path is not None else []
        keys = [t.workload_key for t in self.tasks]
        plan, log_used = plan_rounds(per_task, keys, lines, self.per_round)
        for r in plan:
            self._apply_round(r.task, per_task[r.task].costs_s[r.start : r.stop])
        self.rounds = len(plan)
        if log_used:
            self._wall_offset_s = float(lines[-1].get("wall_s") or 0.0)
        for policy, recs in zip(self.policies, per_task):
            for state, meta in zip(recs.states, recs.metas):
                if meta is not None:  # a template's config index, before `update`
                    policy.note_meta(state, meta)
            if recs.states:
                policy.update(recs.states, recs.costs_s)
        self.resumed = True
        return sum(len(r.costs_s) for r in per_task)

    # ---------------------------------------------------------------- loop

    def tune(
        self,
        measurer: Measurer,
        trials: int,
        on_round: Callable[[dict[str, Any]], None] | None = None,
        **options: Any,
    ) -> SchedulerResult:
        """The tuning loop (loop.tune) on this scheduler: rounds until `trials` new
        measurements are made or every task is done; options `max_rounds`, `ahead`,
        `should_stop`, `clock`, `time_budget_s`.

        `max_rounds=len(tasks)` on a fresh scheduler runs exactly the warm-up
        round of every task (a round may measure fewer than per_round
        candidates when a task's space is small; the budget does not spill
        into another task's round).

        With `ahead` (default: when the timing leaves a core idle), while a
        round is timed the task likely to come next
        (`likely_next_task`) searches its next round (compiler/search/ahead.py);
        a policy keeps what it found until that task's next round, whenever it
        comes, and then only scores it again with the cost model of that time.
        """
        return loop.tune(self, measurer, trials, on_round=on_round, **options)


def _check_options(
    tasks: Sequence[SearchTask],
    policies: Sequence[SearchPolicy],
    strategy: str,
    per_round: int,
    alpha: float,
    backward_window: int,
    eps_greedy: float,
    forward: str,
) -> None:
    if len(tasks) != len(policies):
        raise ValueError(f"task scheduler: {len(tasks)} tasks but {len(policies)} policies")
    if strategy not in STRATEGIES:
        raise ValueError(f"task scheduler: unknown strategy {strategy!r}; choose from "
                         f"{', '.join(STRATEGIES)}")  # fmt: skip
    if per_round < 1:
        raise ValueError(f"task scheduler: per_round must be >= 1, got {per_round}")
    if not 0.0 <= alpha <= 1.0 or not 0.0 <= eps_greedy <= 1.0:
        raise ValueError("task scheduler: alpha and eps_greedy must be within [0, 1]")
    if forward not in FORWARD_KINDS:
        raise ValueError(f"task scheduler: unknown forward estimate {forward!r}; choose from "
                         f"{', '.join(FORWARD_KINDS)}")  # fmt: skip
    if backward_window < 1:
        raise ValueError(f"task scheduler: backward_window must be >= 1, got {backward_window}")
