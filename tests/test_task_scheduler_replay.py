"""Strategies replayed on recorded curves (compiler/task_scheduler/replay.py): a
replay of a run's own decision log makes the run's decisions again, and the
oracle is the true minimum over allocations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from test_task_scheduler import CURVES, WEIGHTS, curve_measurer, make_tasks, scheduler

from compiler.task_scheduler import read_decision_log
from compiler.task_scheduler.replay import (
    CURVE_ENDED,
    TaskCurve,
    curves_from_log,
    oracle_trials,
    replay,
    trials_to_reach,
)


def logged_run(tmp_path, strategy: str, trials: int = 320, seed: int = 3):
    tasks = make_tasks(WEIGHTS)
    log = tmp_path / f"{strategy}.jsonl"
    options = {"strategy": strategy, "seed": seed, "early_stopping": 24, "log_path": log}
    sched = scheduler(tasks, **options)
    sched.tune(curve_measurer(tasks, CURVES), trials)
    return tasks, read_decision_log(log), lambda: scheduler(make_tasks(WEIGHTS), **options)


@pytest.mark.parametrize("strategy", ["gradient", "round-robin"])
def test_replaying_a_run_on_its_own_log_makes_the_same_decisions(tmp_path, strategy):
    tasks, lines, fresh = logged_run(tmp_path, strategy)
    curves = curves_from_log(lines, len(tasks))
    assert [sum(c.trials) for c in curves] == [
        sum(line["trials"] for line in lines if line["task"] == i) for i in range(len(tasks))
    ]
    result = replay(fresh(), curves, budget=320)
    assert result.choices == [line["task"] for line in lines]
    assert [t for t, _ in result.points] == [line["total_trials"] for line in lines]
    logged_f = [line["f_s"] for line in lines]
    replayed_f = [f if math.isfinite(f) else None for _, f in result.points]
    assert replayed_f == pytest.approx(logged_f)
    assert result.curve_ends == 0


def test_a_task_wanted_past_its_curve_is_stopped_and_the_rest_go_on():
    curves = [TaskCurve((8, 8), (4e-3, 3e-3)), TaskCurve((8,) * 6, (5e-3,) * 6)]
    sched = scheduler(make_tasks([1, 1]), strategy="round-robin")
    result = replay(sched, curves, budget=64)
    assert result.rounds == [2, 6]
    assert result.curve_ends == 1
    assert sched.task_states[0].stop_reason == CURVE_ENDED
    assert result.points[-1] == (64, pytest.approx(3e-3 + 5e-3))


def test_replay_needs_a_fresh_scheduler_and_one_curve_per_task():
    curve = TaskCurve((8,), (1e-3,))
    with pytest.raises(ValueError, match="1 curves for 2 tasks"):
        replay(scheduler(make_tasks([1, 1])), [curve], budget=8)
    sched = scheduler(make_tasks([1]))
    replay(sched, [curve], budget=8)
    with pytest.raises(RuntimeError, match="already recorded rounds"):
        replay(sched, [curve], budget=8)


def brute_force_oracle(curves, weights, target):
    best = None
    for ks in itertools.product(*(range(1, len(c) + 1) for c in curves)):
        f = sum(w * c.best_s[k - 1] for w, c, k in zip(weights, curves, ks))
        if f <= target:
            trials = sum(sum(c.trials[:k]) for c, k in zip(curves, ks))
            best = trials if best is None else min(best, trials)
    return best


def test_the_oracle_is_the_fewest_trials_over_every_allocation():
    rng = np.random.default_rng(0)
    for _ in range(40):
        curves = []
        for _task in range(3):
            n = int(rng.integers(1, 5))
            best = np.minimum.accumulate(rng.uniform(1e-3, 5e-3, n))
            curves.append(TaskCurve(tuple(int(t) for t in rng.integers(1, 9, n)), tuple(best)))
        weights = [int(w) for w in rng.integers(1, 4, 3)]
        start = sum(w * c.best_s[0] for w, c in zip(weights, curves))
        end = sum(w * c.best_s[-1] for w, c in zip(weights, curves))
        for target in (start, (start + end) / 2, end, end * 0.99):
            assert oracle_trials(curves, weights, target) == brute_force_oracle(
                curves, weights, target
            )


def test_no_strategy_beats_the_oracle(tmp_path):
    tasks, lines, _fresh = logged_run(tmp_path, "round-robin", trials=640)
    curves = curves_from_log(lines, len(tasks))
    rr = replay(scheduler(make_tasks(WEIGHTS), strategy="round-robin", early_stopping=24),
                curves, budget=320)  # fmt: skip
    target = rr.points[-1][1]
    oracle = oracle_trials(curves, WEIGHTS, target)
    assert oracle is not None and oracle <= rr.points[-1][0]
    for seed in range(5):
        grad = replay(scheduler(make_tasks(WEIGHTS), seed=seed, early_stopping=24), curves, 320)
        reached = trials_to_reach(grad.points, target)
        assert reached is None or reached >= oracle


def test_the_oracle_refuses_a_task_without_a_first_measurement():
    with pytest.raises(ValueError, match="first round with a valid latency"):
        oracle_trials([TaskCurve((8,), (None,))], [1], 1e-3)
