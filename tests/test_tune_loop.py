"""The tuning loop on a scheduler of one task (what `tune-op` runs) with a scripted
measurer (no LLVM): trial budget, early stopping, exhausted spaces, runs of
failures, search ahead; and with the real Measurer on scripted builds and timings:
records, resume, nothing measured twice."""

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from compiler import ops, te
from compiler.measure import MeasureResult, MeasureStats
from compiler.measure.types import ErrorKind
from compiler.policies import create
from compiler.search.scorers import RandomScorer
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler
from compiler.te.dag import ComputeDAG


@dataclass
class Target:
    target: str = "test"


@dataclass
class ScriptedMeasurer:
    """Costs from a function of the call count: what a real runner would report."""

    cost_of: object
    store: None = None
    target: Target = field(default_factory=Target)
    stats: MeasureStats = field(default_factory=MeasureStats)
    calls: int = 0

    def measure(self, inputs, on_run_start=None):
        if on_run_start is not None:  # as the real one: after building, before timing
            on_run_start()
        out = []
        for inp in inputs:
            self.calls += 1
            cost = self.cost_of(self.calls)
            if cost is None:
                out.append((inp, MeasureResult((), ErrorKind.RUN_ERROR, "scripted failure")))
            else:
                out.append((inp, MeasureResult((cost,))))
        return out


def task(n=32):
    a, b = te.placeholder((n, n), name="A"), te.placeholder((n, n), name="B")
    return SearchTask("mm", ComputeDAG([ops.matmul(a, b)]))


def policy(t):
    return create("sketch", t.dag, model=RandomScorer(), population=64, seed=0)


def tune_task(t, pol, measurer, *, trials, per_round, early_stopping=None, ahead=None,
              baseline=None):  # fmt: skip
    """tune-op's loop: a task scheduler of one task; (scheduler, result)."""
    sched = TaskScheduler([t], [pol], per_round=per_round, early_stopping=early_stopping,
                          baselines=[baseline])  # fmt: skip
    return sched, sched.tune(measurer, trials, ahead=ahead)


def stop_reason(sched):
    return sched.task_states[0].stop_reason


def test_budget_counts_new_measurements_and_best_is_the_cheapest():
    t = task()
    m = ScriptedMeasurer(lambda k: 1.0 / k)
    pol = policy(t)
    _, result = tune_task(t, pol, m, trials=20, per_round=8)
    assert result.trials == 20 and [r["trials"] for r in result.rounds] == [8, 8, 4]
    assert result.best_costs_s[0] == pytest.approx(1 / 20) and pol.best(1)
    assert result.stop_reason == "trial budget spent"


def test_a_time_budget_starts_no_round_after_it(monkeypatch):
    from compiler.task_scheduler import loop

    ticks = iter(range(0, 10_000, 10))  # each look at the clock is 10 s later
    monkeypatch.setattr(loop, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    t = task()
    sched = TaskScheduler([t], [policy(t)], per_round=8)
    result = sched.tune(ScriptedMeasurer(lambda k: 1.0 / k), 1000, time_budget_s=25)
    assert [r["trials"] for r in result.rounds] == [8, 8]  # rounds at 10 s and 20 s
    assert result.trials == 16 and result.stop_reason == "time budget spent"


def test_early_stopping_after_trials_without_gain():
    t = task()
    m = ScriptedMeasurer(lambda k: 1.0 if k > 1 else 0.5)
    sched, result = tune_task(t, policy(t), m, trials=100, per_round=4, early_stopping=8)
    assert result.trials == 12 and "no improvement in 8 trials" in stop_reason(sched)
    assert result.stop_reason == "every task is done"


def test_a_run_of_failures_stops_the_task():
    t = task()
    m = ScriptedMeasurer(lambda k: None)
    pol = policy(t)
    sched, result = tune_task(t, pol, m, trials=400, per_round=64)
    assert not pol.best(1) and "failed candidates in a row" in stop_reason(sched)
    assert result.trials == 192  # three rounds of 64 failures reach 150 in a row


def test_a_tiny_space_is_exhausted():
    a = te.placeholder((2,), name="A")
    t = SearchTask("relu2", ComputeDAG([ops.relu(a)]))
    m = ScriptedMeasurer(lambda k: 1.0)
    sched, result = tune_task(t, create("random", t.dag, seed=0), m, trials=50, per_round=8)
    assert result.trials < 50 and stop_reason(sched) in (
        "search space exhausted",
        "no new candidate",
    )


class VersionedScorer:
    """Scores that change completely each time it learns (a stand-in cost model)."""

    def __init__(self):
        self.version = 0

    def score(self, state, version):
        return (hash((state.steps, version)) % 10007) / 10007

    def predict(self, states):
        return np.array([self.score(s, self.version) for s in states])

    def update(self, states, costs_s):
        self.version += 1


def test_searched_ahead_candidates_are_chosen_by_the_model_that_learned_meanwhile():
    t = task()
    model = VersionedScorer()
    # without transplants (a round's other source of candidates: tests/test_transplant.py)
    pol = create("sketch", t.dag, model=model, population=64, seed=0, transplants=False)
    first = pol.next_candidates(8)
    pol.prepare(8, first)  # as while `first` is timed: with the model of version 0
    found = dict(pol._ahead[1].scored)
    assert not {s.steps for s in first} & set(found)  # the pending are not proposed again
    pol.update(first, [1e-3] * len(first))  # version 1
    chosen = pol.next_candidates(8)  # 8 x 5 % rounds to no eps-greedy pick
    assert len(chosen) == 8 and {s.steps for s in chosen} <= set(found)
    rest = [s for _, s in found.values() if s.steps not in {c.steps for c in chosen}]
    assert min(model.score(s, 1) for s in chosen) >= max(model.score(s, 1) for s in rest)
    by_stale = sorted(found.values(), key=lambda p: -p[0])[:8]
    assert {s.steps for _, s in by_stale} != {s.steps for s in chosen}


def test_tuning_searches_the_next_round_while_measuring():
    t = task()
    m = ScriptedMeasurer(lambda k: 1.0 / k)
    _, result = tune_task(t, policy(t), m, trials=32, per_round=8, ahead=True)
    assert [r["ahead_s"] > 0 for r in result.rounds] == [True, True, True, False]
    _, alone = tune_task(
        t, policy(t), ScriptedMeasurer(lambda k: 1.0 / k), trials=32, per_round=8, ahead=False
    )
    assert all(r["ahead_s"] == 0 for r in alone.rounds) and alone.trials == result.trials == 32


def test_search_ahead_only_when_the_timing_leaves_a_core_idle():
    from compiler.measure.devices import Device, available_cores
    from compiler.search.ahead import core_idle_while_timing

    cores = available_cores()
    whole = [Device("cpu", cores)]
    assert core_idle_while_timing(1, whole) == (len(cores) > 1)
    assert not core_idle_while_timing(0, whole)  # 0: a thread on every core of the device
    assert not core_idle_while_timing(1, [Device(f"cpu{c}", (c,)) for c in cores])
    t = task()  # a measurer that does not say how it times: no search ahead
    _, result = tune_task(t, policy(t), ScriptedMeasurer(lambda k: 1.0 / k), trials=16, per_round=8)
    assert all(r["ahead_s"] == 0 for r in result.rounds)


class UntrainedScorer(VersionedScorer):
    """Random scores until trained: searching ahead only samples (and prefetches)."""

    is_trained = False

    def __init__(self):
        super().__init__()
        self.prefetched, self.scored = [], []

    def prefetch(self, states):
        self.prefetched.append([s.steps for s in states])

    def predict(self, states):
        self.scored.append([s.steps for s in states])
        return super().predict(states)


def test_an_untrained_model_only_samples_ahead_and_the_next_round_evolves_from_them():
    t = task()
    model = UntrainedScorer()
    pol = create("sketch", t.dag, model=model, population=64, seed=0)
    first = pol.next_candidates(8)
    model.scored.clear()
    pol.prepare(8, first)
    assert model.scored == [] and len(model.prefetched) == 1  # no evolution, features only
    pol.update(first, [1e-3] * len(first))
    model.is_trained = True
    assert len(pol.next_candidates(8)) == 8
    assert set(model.prefetched[0]) <= set(model.scored[0])  # the first generation


class TimedMeasurer(ScriptedMeasurer):
    """ScriptedMeasurer whose every batch counts 2 s of building and 1 s of timing."""

    def measure(self, inputs, on_run_start=None):
        self.stats.build_s += 2.0
        self.stats.measure_s += 1.0
        return super().measure(inputs, on_run_start)


def test_every_round_reports_its_search_and_tuning_times_to_the_policy():
    t = task()
    pol = policy(t)
    reports = []
    pol.note_round = lambda **kw: reports.append(kw)
    _, result = tune_task(t, pol, TimedMeasurer(lambda k: 1.0 / k), trials=20, per_round=8)
    assert [r["candidates"] for r in reports] == [8, 8, 4]
    assert [r["tuning_s"] for r in reports] == [3.0, 3.0, 3.0]
    assert [r["search_s"] for r in reports] == [line["search_s"] for line in result.rounds]
    assert all(line["learn_s"] > 0 for line in result.rounds)


def scripted_measurer(store, cost_of):
    from scripted_backends import ScriptedBuilder, ScriptedRunner

    from compiler.measure import Measurer
    from compiler.records import TargetInfo

    target = TargetInfo("llvm -mcpu=test", "test", "", 1)
    return Measurer(builder=ScriptedBuilder(), runner=ScriptedRunner(cost_of), store=store,
                    target=target)  # fmt: skip


def test_the_loop_records_every_result_and_a_rerun_resumes_without_measuring_twice(tmp_path):
    from compiler.records import SQLiteStore
    from compiler.schedule.default import default_schedule

    t = task()
    steps = {}  # candidate -> cost, the same however often it is proposed

    def cost_of(inp):
        return steps.setdefault(inp.state.steps, 1e-3 / (1 + len(steps)))

    baseline = default_schedule(t.dag)
    with SQLiteStore(tmp_path / "r.db") as store:
        m = scripted_measurer(store, cost_of)
        _, first = tune_task(t, policy(t), m, trials=20, per_round=8, baseline=baseline)
        assert m.builder.built[0].state.steps == baseline.steps  # the default first
        rows = list(store.records(t.workload_key))
        assert len(rows) == first.trials == 20 == m.runner.timed
        again = scripted_measurer(store, cost_of)
        sched2, second = tune_task(t, policy(t), again, trials=12, per_round=8,
                                   baseline=baseline)  # fmt: skip
        assert second.resumed == 20 and second.trials == 12 == again.runner.timed
        assert sched2.task_states[0].trials == 32
        hashes = [json.dumps(r.steps) for r in store.records(t.workload_key)]
        assert len(hashes) == len(set(hashes)) == 32  # nothing measured twice
        assert sched2.task_states[0].best_cost_s == min(steps.values())


def test_a_round_of_candidates_measured_before_ends_the_task(tmp_path):
    from compiler.records import SQLiteStore

    t = task()

    pol = policy(t)  # proposes the same programs every round (the measurer skips them)
    fixed = pol.next_candidates(4)
    pol.next_candidates = lambda n: fixed[:n]
    with SQLiteStore(tmp_path / "r.db") as store:
        m = scripted_measurer(store, lambda inp: 1e-3)
        sched, result = tune_task(t, pol, m, trials=40, per_round=4)
    assert result.trials == 4 == m.runner.timed
    assert stop_reason(sched) == "no new candidate"
