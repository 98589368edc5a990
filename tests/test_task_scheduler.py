"""The task scheduler on synthetic tasks with known latency-versus-trials curves
(no compiling): where the gradient policy spends the budget, when tasks stop,
f against round-robin, determinism, the decision log, a user objective.

The fakes here (CurvePolicy, CurveMeasurer, make_tasks) are shared with the
other test_task_scheduler_* modules.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pytest

from compiler import ops, te
from compiler.measure import MeasureResult, MeasureStats, to_record
from compiler.measure.types import ErrorKind
from compiler.records import TargetInfo, steps_hash
from compiler.schedule.state import State
from compiler.schedule.steps import Split, steps_to_json
from compiler.search.policy import SearchPolicy
from compiler.task import SearchTask
from compiler.task_scheduler import (
    DECISION_LOG_KEYS,
    TaskScheduler,
    read_decision_log,
    round_size,
)
from compiler.te.dag import ComputeDAG

TARGET = TargetInfo("llvm -mcpu=test -num-cores=1", "test", "", 1)


@dataclass(frozen=True)
class Curve:
    """Latency of a task's k-th candidate: an exponential fall from start to floor
    over `tau` trials, frozen after `plateau_after` trials; only every third
    candidate is a new best (the others are 25 % slower). None: always fails."""

    start_s: float
    floor_s: float
    tau: float = 100.0
    plateau_after: int | None = None
    fails: bool = False

    def cost(self, k: int) -> float | None:
        if self.fails:
            return None
        k_eff = k if self.plateau_after is None else min(k, self.plateau_after)
        base = self.floor_s + (self.start_s - self.floor_s) * math.exp(-k_eff / self.tau)
        return base * (1.0 if k % 3 == 0 else 1.25)


def task_dag(n: int, op: str = "matmul") -> ComputeDAG:
    if op == "softmax":
        return ComputeDAG([ops.softmax(te.placeholder((n, n), name="X"))])
    a, b = te.placeholder((n, n), name="A"), te.placeholder((n, n), name="B")
    return ComputeDAG([ops.matmul(a, b)])


def make_tasks(weights: list[int], sizes: list[int] | None = None) -> list[SearchTask]:
    sizes = sizes or [8 + 3 * i for i in range(len(weights))]
    return [SearchTask(f"t{i}", task_dag(n), w) for i, (w, n) in enumerate(zip(weights, sizes))]


def candidate_number(state: State) -> int:
    return state.steps[0].factors[0] - 1  # type: ignore[attr-defined]


class CurvePolicy(SearchPolicy):
    """Candidate k splits the output's first loop by k + 1: distinct, replayable
    states proposed in order; `limit` bounds the space."""

    def __init__(self, dag: ComputeDAG, *, limit: int | None = None):
        super().__init__(dag, seed=0, cores=1)
        self.limit, self.next_k = limit, 0
        self.stage = len(dag.tensors) - 1

    def next_candidates(self, n: int) -> list[State]:
        out: list[State] = []
        while len(out) < n and (self.limit is None or self.next_k < self.limit):
            s = State.initial(self.dag).apply(Split(self.stage, 0, (self.next_k + 1,)))
            self.next_k += 1
            if not self.is_measured(s):
                out.append(s)
        return out


@dataclass
class CurveMeasurer:
    """Costs from each task's curve; writes records to `store` as a Measurer does and,
    like it, skips candidates the store already holds."""

    curves: dict[str, Curve]
    store: object | None = None
    target: TargetInfo = TARGET
    stats: MeasureStats = field(default_factory=MeasureStats)

    def measure(self, inputs, on_run_start=None):
        if on_run_start is not None:  # as a Measurer does: after building, before timing
            on_run_start()
        pairs = []
        for inp in inputs:
            key = inp.task.workload_key
            h = steps_hash(steps_to_json(inp.state.steps))
            if self.store is not None and h in self.store.measured(key, self.target.target):
                continue
            cost = self.curves[key].cost(candidate_number(inp.state))
            if cost is None:
                result = MeasureResult((), ErrorKind.RUN_ERROR, "scripted failure")
            else:
                result = MeasureResult((cost,))
            if self.store is not None:
                self.store.add([to_record(inp, result, self.target)])
            pairs.append((inp, result))
        self.stats.build_s += 0.01 * len(pairs)
        self.stats.measure_s += 0.02 * len(pairs)
        return pairs


def scheduler(tasks, curves=None, *, limits=None, **options) -> TaskScheduler:
    policies = [CurvePolicy(t.dag, limit=(limits or {}).get(i)) for i, t in enumerate(tasks)]
    options.setdefault("per_round", 8)
    return TaskScheduler(tasks, policies, **options)


def curve_measurer(tasks, curves, store=None) -> CurveMeasurer:
    return CurveMeasurer({t.workload_key: c for t, c in zip(tasks, curves)}, store)


# heavy and still improving, light and still improving, plateaued early, medium
WEIGHTS = [6, 1, 3, 2]
CURVES = [
    Curve(10e-3, 1e-3, tau=150),
    Curve(10e-3, 1e-3, tau=150),
    Curve(5e-3, 4e-3, tau=4, plateau_after=6),
    Curve(4e-3, 1e-3, tau=60),
]


def run(strategy: str, trials: int = 480, seed: int = 0, **options):
    tasks = make_tasks(WEIGHTS)
    sched = scheduler(tasks, strategy=strategy, seed=seed, **options)
    result = sched.tune(curve_measurer(tasks, CURVES), trials)
    return sched, result


def test_gradient_favours_heavy_improving_tasks_and_stops_plateaued_ones():
    sched, result = run("gradient", early_stopping=24)
    rounds = [st.rounds for st in sched.task_states]
    assert result.trials == 480 and sched.total_trials == 480
    assert rounds[0] > 2 * rounds[1], rounds  # weight 6 vs weight 1, same curve
    plateau = sched.task_states[2]
    assert plateau.done and plateau.stop_reason == "no improvement in 24 trials"
    assert plateau.trials <= 8 + 24 + 8  # warm-up, then at most its stale budget and a round
    assert not sched.task_states[0].done


def test_gradient_reaches_a_lower_f_than_round_robin_for_the_same_budget():
    grad, g_result = run("gradient", early_stopping=24)
    rr, r_result = run("round-robin", early_stopping=24)
    assert g_result.trials == r_result.trials == 480
    assert g_result.objective_s < r_result.objective_s
    assert g_result.objective_s == pytest.approx(
        sum(w * g for w, g in zip(WEIGHTS, grad.best_costs_s))
    )
    rr_rounds = [st.rounds for st in rr.task_states if not st.done]
    assert max(rr_rounds) - min(rr_rounds) <= 1  # a fair rotation
    assert {line["choice"] for line in r_result.rounds} == {"round-robin"}


def test_warm_up_round_per_task_first_then_gradient_choices():
    _sched, result = run("gradient", trials=200)
    choices = [(line["task"], line["choice"]) for line in result.rounds]
    assert choices[:4] == [(0, "warmup"), (1, "warmup"), (2, "warmup"), (3, "warmup")]
    assert {c for _, c in choices[4:]} <= {"gradient", "epsilon"}
    assert "gradient" in {c for _, c in choices[4:]}


def test_observed_forward_estimate_also_beats_round_robin_on_the_synthetic_curves():
    grad, g_result = run("gradient", early_stopping=24, forward="observed")
    _rr, r_result = run("round-robin", early_stopping=24)
    assert g_result.objective_s < r_result.objective_s
    plateau = grad.task_states[2]
    assert plateau.done or plateau.trials <= 16  # stopped, or starved after one retry


def test_unknown_forward_estimate_is_rejected():
    with pytest.raises(ValueError, match="unknown forward estimate 'psychic'"):
        scheduler(make_tasks([1]), forward="psychic")


def test_max_rounds_runs_exactly_the_warm_up():
    tasks = make_tasks(WEIGHTS)
    sched = scheduler(tasks, strategy="round-robin")
    result = sched.tune(curve_measurer(tasks, CURVES), 10_000, max_rounds=len(tasks))
    assert [line["task"] for line in result.rounds] == [0, 1, 2, 3]
    assert [st.rounds for st in sched.task_states] == [1, 1, 1, 1]
    assert result.stop_reason == "round limit reached"


def test_identical_seeds_give_identical_decisions():
    def decisions(seed):
        _, result = run("gradient", trials=320, seed=seed, eps_greedy=0.3)
        return [(line["task"], line["choice"], line["gradients"]) for line in result.rounds]

    first = decisions(0)
    assert decisions(0) == first
    assert decisions(1) != first  # epsilon choices follow the seed
    assert any(c == "epsilon" for _, c, _ in first)


def test_decision_log_has_every_key_and_appends(tmp_path):
    log = tmp_path / "logs" / "decisions.jsonl"
    tasks = make_tasks(WEIGHTS)
    sched = scheduler(tasks, log_path=log)
    result = sched.tune(curve_measurer(tasks, CURVES), 64)
    lines = read_decision_log(log)
    assert lines == json.loads(json.dumps(result.rounds))
    assert [line["round"] for line in lines] == list(range(8))
    for line in lines:
        assert set(DECISION_LOG_KEYS) <= set(line)
        assert len(line["gradients"]) == len(tasks)
        for g in line["gradients"]:
            assert set(g) == {"task", "backward", "forward", "similarity", "gradient"}
        assert line["trials"] == 8 and line["errors"] == 0
        assert line["build_s"] == pytest.approx(0.08) and line["measure_s"] == pytest.approx(0.16)
    assert lines[0]["f_s"] is None  # f is unknown until every task has been measured
    warmed = sum(t.weight * line["task_best_s"] for t, line in zip(tasks, lines[:4]))
    assert lines[3]["f_s"] == pytest.approx(warmed)  # after every task's warm-up round
    assert lines[-1]["total_trials"] == 64 and lines[-1]["wall_s"] >= lines[0]["wall_s"]
    warm = lines[0]["gradients"]
    assert all(g["gradient"] is None for g in warm)  # nothing computed before warm-up
    after = lines[5]["gradients"]
    # the roofline caps the fastest task's expected gain at 0; the others' stay negative
    assert all(g["gradient"] <= 0 and g["forward"] <= 0 for g in after)
    assert any(g["gradient"] < 0 for g in after)


def test_read_decision_log_skips_a_line_cut_short(tmp_path):
    log = tmp_path / "d.jsonl"
    log.write_text('{"task": 0, "trials": 8}\n{"task": 1, "tri')
    assert read_decision_log(log) == [{"task": 0, "trials": 8}]
    log.write_text('{"task": 0, "tri\n{"task": 1, "trials": 8}\n')
    with pytest.raises(ValueError, match="d.jsonl:1"):
        read_decision_log(log)
    assert read_decision_log(tmp_path / "none.jsonl") == []


def test_user_objective_steers_the_budget():
    calls = []

    def only_task_1(best):
        calls.append(list(best))
        return best[1]

    sched, result = run("gradient", trials=320, objective=only_task_1, eps_greedy=0.0)
    assert calls, "the objective hook was never called"
    rounds = [st.rounds for st in sched.task_states]
    assert rounds[1] == 40 - 3  # every round after the warm-up
    assert result.objective_s == sched.best_costs_s[1]
    assert result.rounds[-1]["f_s"] == sched.best_costs_s[1]


def test_an_exhausted_space_and_a_failing_task_are_done():
    tasks = make_tasks([1, 1, 1])
    curves = [Curve(1e-3, 1e-4), Curve(1e-3, 1e-4, fails=True), Curve(1e-3, 1e-4)]
    sched = scheduler(tasks, limits={0: 12}, per_round=32, eps_greedy=0.0)
    result = sched.tune(curve_measurer(tasks, curves), 600)
    first, failing, _ = sched.task_states
    assert first.done and first.stop_reason == "search space exhausted" and first.trials == 12
    assert failing.done and failing.stop_reason == "160 failed candidates in a row"
    assert failing.rounds == 5  # a task without a valid measurement goes first
    assert [line["task"] for line in result.rounds[3:7]] == [1, 1, 1, 1]
    assert math.isinf(result.objective_s) and result.rounds[-1]["f_s"] is None
    # the round that found the space exhausted is in the log, with no trials
    (spent,) = [ln for ln in result.rounds if ln["task"] == 0 and ln["trials"] == 0]
    assert spent["task_done"] and spent["stop_reason"] == "search space exhausted"


def test_global_early_stopping_ends_the_run():
    tasks = make_tasks([1, 2])
    flat = [Curve(1e-3, 1e-3, plateau_after=0), Curve(2e-3, 2e-3, plateau_after=0)]
    sched = scheduler(tasks, global_early_stopping=40)
    result = sched.tune(curve_measurer(tasks, flat), 1000)
    assert result.trials == 16 + 40 and "no improvement of f in 40 trials" == result.stop_reason
    assert all(st.done and st.stop_reason == "global early stopping" for st in sched.task_states)
    assert sched.next_task() is None


def test_propose_record_steps_by_hand():
    tasks = make_tasks([1, 1])
    sched = scheduler(tasks, per_round=4)
    idx = sched.next_task()
    assert idx == 0 and sched.next_task() == 0  # asking again does not move on
    states = sched.propose(idx)
    assert len(states) == 4
    line = sched.record(idx, states, [1e-3, None, 2e-3, math.inf], build_s=0.5, measure_s=0.25)
    assert line["choice"] == "warmup" and line["errors"] == 2 and line["search_s"] >= 0
    assert line["task_best_s"] == 1e-3 and sched.task_states[0].history == [1e-3]
    assert sched.policies[0].best_cost_s == 1e-3
    manual = sched.record(1, sched.propose(1, 2), [3e-3, 4e-3])
    assert manual["choice"] == "manual" and manual["f_s"] == pytest.approx(4e-3)
    with pytest.raises(ValueError, match="2 states but 1 costs"):
        sched.record(0, states[:2], [1.0])


def test_bad_options_are_rejected():
    tasks = make_tasks([1])
    with pytest.raises(ValueError, match="unknown strategy"):
        scheduler(tasks, strategy="fastest")
    with pytest.raises(ValueError, match="1 tasks but 0 policies"):
        TaskScheduler(tasks, [])
    with pytest.raises(ValueError, match="per_round"):
        scheduler(tasks, per_round=0)
    assert round_size(1000, 20) == 50 and round_size(10_000, 20) == 64 and round_size(3, 20) == 1


def test_a_baseline_schedule_is_measured_in_the_first_round_only():
    tasks = make_tasks([1, 1])
    stage = len(tasks[0].dag.tensors) - 1
    base = State.initial(tasks[0].dag).apply(Split(stage, 0, (1000,)))  # candidate 999
    sched = scheduler(tasks, baselines=[base, None], per_round=4)
    result = sched.tune(curve_measurer(tasks, CURVES[:2]), 16)
    first = sched.propose(0, 4)
    assert base.steps not in {s.steps for s in first}  # measured once, never again
    assert sched.task_states[0].history[0] == pytest.approx(CURVES[0].cost(999))
    assert sched.policies[0].is_measured(base) and result.rounds[0]["trials"] == 4
    with pytest.raises(ValueError, match="2 tasks but 1 baselines"):
        scheduler(tasks, baselines=[base])


def test_the_task_searched_ahead_is_the_next_choice_after_a_round_without_gain():
    tasks = make_tasks(WEIGHTS)
    sched = scheduler(tasks, seed=3)
    sched.tune(curve_measurer(tasks, CURVES), trials=8 * 8)  # warm-up, then gradient
    picked = []
    for _ in range(12):
        idx = sched.next_task()
        likely = sched.likely_next_task(idx, 8)
        states = sched.propose(idx, 8)
        sched.record(idx, states, [sched.task_states[idx].best_cost_s * 1.1] * len(states))
        assert sched.next_task() == likely
        picked.append(likely)
    assert len(set(picked)) > 1  # not one task throughout


class PreparingPolicy(CurvePolicy):
    """Notes every `prepare` call in `calls`: (task, n, pending candidates)."""

    def __init__(self, dag, task: int, calls: list):
        super().__init__(dag)
        self.task, self.calls = task, calls

    def prepare(self, n, pending):
        self.calls.append((self.task, n, len(pending)))


def test_tuning_searches_ahead_for_the_likely_next_task_while_measuring():
    tasks = make_tasks(WEIGHTS)
    calls: list = []
    sched = TaskScheduler(tasks, [PreparingPolicy(t.dag, i, calls) for i, t in enumerate(tasks)],
                          per_round=8, seed=1)  # fmt: skip
    expected = []
    measurer = curve_measurer(tasks, CURVES)
    original = measurer.measure

    def measure(inputs, on_run_start=None):
        idx = tasks.index(inputs[0].task)
        expected.append(sched.likely_next_task(idx, len(inputs)))
        return original(inputs, on_run_start)

    measurer.measure = measure  # type: ignore[method-assign]
    result = sched.tune(measurer, trials=8 * 10, ahead=True)
    assert [task for task, _, _ in calls] == expected[:-1]  # none after the last round
    assert all(n == 8 for _, n, _ in calls)
    for line, (task, _, pending) in zip(result.rounds, calls):
        assert pending == (8 if task == line["task"] else 0)
    assert all(line["ahead_s"] >= 0 for line in result.rounds)
    calls.clear()
    sched = TaskScheduler(tasks, [PreparingPolicy(t.dag, i, calls) for i, t in enumerate(tasks)],
                          per_round=8, seed=1)  # fmt: skip
    sched.tune(curve_measurer(tasks, CURVES), trials=8 * 10, ahead=False)
    assert calls == []
