"""The scheduler's parts on their own: gradient terms by hand, similarity groups,
the objective's derivative, a task's stop rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_task_scheduler import make_tasks, scheduler, task_dag

from compiler import ops, te
from compiler.task_scheduler.gradient import (
    PRIOR_GAIN,
    PRIOR_ROUNDS,
    GradientConfig,
    TaskGradient,
    backward_term,
    fastest_throughput,
    observed_forward,
    pooled_gain,
    roofline_gap,
    task_gradients,
)
from compiler.task_scheduler.objective import chain_gradients, weighted_latency
from compiler.task_scheduler.similarity import op_kind, similarity_groups, similarity_key
from compiler.task_scheduler.strategy import gradient_task, round_robin_task
from compiler.task_scheduler.task_state import MAX_ERRORS_IN_A_ROW, TaskState
from compiler.te.dag import ComputeDAG


def state_with(*rounds: list[float | None]) -> TaskState:
    st = TaskState()
    for costs in rounds:
        st.add_round(costs, early_stopping=None)
    return st


def test_gradient_terms_by_hand():
    slow = state_with([8.0], [6.0, 7.0], [5.0], [4.0])  # history 8, 6, 5, 4
    fast = state_with([1.0])
    conf = GradientConfig(alpha=0.2, beta=2.0, backward_window=3, forward="ansor")
    grads = task_gradients([slow, fast], [100, 100], [(0, 1), (0, 1)], [3.0, 1.0], conf)
    g0, g1 = grads
    assert g0.backward == pytest.approx((4 - 8) / 3)
    # the group's best throughput is 100 FLOP/s (task 1): at half of it task 0 takes 2 s
    assert g0.similarity == pytest.approx(2 * 100 / 100 - 4)
    assert g0.forward == pytest.approx(min(-4 / 4, -2.0))
    assert g0.gradient == pytest.approx(3.0 * (0.2 * (-4 / 3) + 0.8 * -2.0))
    assert g1.backward == 0.0  # history shorter than the window
    assert g1.similarity == pytest.approx(2 * 100 / 100 - 1)  # above g: the other term wins
    assert g1.forward == pytest.approx(-1.0)
    assert g1.gradient == pytest.approx(0.8 * -1.0)


def test_gradient_without_group_partner_or_measurement():
    measured, failed, fresh = state_with([2.0], [1.0]), state_with([None]), TaskState()
    done = state_with([1.0])
    done.stop("test")
    states = [measured, failed, fresh, done]
    grads = task_gradients(states, [10] * 4, [(0,), (1,), (2,), (3,)], [1.0, None, None, 1.0],
                           GradientConfig(forward="ansor"))  # fmt: skip
    assert grads[0].similarity is None and grads[0].forward == pytest.approx(-1.0 / 2)
    assert grads[1] == TaskGradient(1, gradient=-math.inf)  # unknown latency: first in line
    assert grads[2] == TaskGradient(2) and grads[3] == TaskGradient(3)
    assert grads[1].to_json() == {
        "task": 1, "backward": None, "forward": None, "similarity": None, "gradient": None
    }  # fmt: skip


def test_backward_window():
    assert backward_term([9, 8, 6, 3], 3) == pytest.approx(-2.0)
    assert backward_term([9, 8, 6], 3) == 0.0
    assert backward_term([9, 8, 6, 3, 3], 2) == pytest.approx(-1.5)
    assert backward_term([math.inf, 8, 6, 3], 3) == 0.0
    assert backward_term([9, 8, 6], 3, short_history=True) == pytest.approx(-1.5)
    assert backward_term([9], 3, short_history=True) == 0.0


def test_observed_forward_term_shrinks_each_task_towards_the_pooled_gain():
    gaining = state_with([10.0], [5.0], [4.0])  # gains 0.5 and 0.2
    stalled = state_with([10.0], [10.0], [10.0])  # gains 0 and 0
    fresh = state_with([3.0])  # no round after its first yet
    states = [gaining, stalled, fresh]
    r0 = (0.5 + 0.2 + 0.0 + 0.0) / 4
    assert pooled_gain(states) == pytest.approx(r0)
    assert pooled_gain([fresh]) == PRIOR_GAIN
    k = PRIOR_ROUNDS
    assert observed_forward(gaining.history, 4.0, r0) == pytest.approx(
        -4.0 * (0.7 + k * r0) / (2 + k)
    )
    assert observed_forward(stalled.history, 10.0, r0) == pytest.approx(-10.0 * k * r0 / (2 + k))
    assert observed_forward(fresh.history, 3.0, r0) == pytest.approx(-3.0 * r0)
    conf = GradientConfig(alpha=0.0, forward="observed")
    grads = task_gradients(states, [1, 1, 1], [(0,), (1,), (2,)], [1.0, 1.0, 1.0], conf)
    # the stalled task costs most but the gaining one is expected to gain most
    assert grads[0].gradient < min(grads[1].gradient, grads[2].gradient)
    assert grads[1].gradient == pytest.approx(-10.0 * k * r0 / (2 + k))
    ansor = task_gradients(
        states, [1, 1, 1], [(0,), (1,), (2,)], [1.0] * 3, GradientConfig(0.0, forward="ansor")
    )
    assert ansor[1].gradient < ansor[0].gradient  # Ansor's -g/t still prefers the stalled one


def test_roofline_forward_caps_a_task_near_the_fastest_throughput():
    at_roof = state_with([2.0], [2.0])  # 200 FLOPs in 2 s: 100 FLOP/s, the fastest
    slower = state_with([4.0])  # 200 FLOPs in 4 s: 2 s above the roofline
    moves_data = state_with([3.0])  # no FLOPs (a transpose): any gain is possible
    states, flops = [at_roof, slower, moves_data], [200, 200, 0]
    assert fastest_throughput(states, flops) == pytest.approx(100.0)
    assert fastest_throughput([TaskState()], [5]) is None
    assert roofline_gap(4.0, 200, 100.0) == pytest.approx(2.0)
    assert roofline_gap(2.0, 200, 100.0) == 0.0 and roofline_gap(3.0, 0, 100.0) == 3.0
    groups = [(0,), (1,), (2,)]
    conf = GradientConfig(alpha=0.0, forward="roofline")
    grads = task_gradients(states, flops, groups, [1.0] * 3, conf)
    assert grads[0].forward == 0.0  # Ansor's -g/t would be -1: nothing left to gain
    assert grads[1].forward == pytest.approx(-2.0)  # -g/t = -4 is capped by the gap
    assert grads[2].forward == pytest.approx(-3.0)  # -g/t, no cap
    ansor = task_gradients(states, flops, groups, [1.0] * 3, GradientConfig(0.0, forward="ansor"))
    assert [g.forward for g in ansor] == pytest.approx([-1.0, -4.0, -3.0])


def test_similarity_groups_from_op_kind_and_log_flops():
    dags = [task_dag(17), task_dag(18), task_dag(16), task_dag(32), task_dag(16, "softmax")]
    groups = similarity_groups(dags)
    assert groups[0] == groups[1] == (0, 1)  # 9826 and 11664 FLOPs: one golden-ratio step
    assert groups[2] == (2,) and groups[3] == (3,) and groups[4] == (4,)
    assert similarity_key(dags[4])[0] == "softmax"
    relu = ComputeDAG([ops.relu(te.placeholder((4, 4), name="X"))])
    assert op_kind(relu) == "injective"


def test_scheduler_uses_the_group_term_for_similar_tasks():
    tasks = make_tasks([1, 1, 1], sizes=[17, 18, 32])
    sched = scheduler(tasks)
    for i, cost in enumerate([1e-3, 4e-3, 1e-3]):
        sched.record(i, sched.propose(i), [cost] * 8)
    g = sched.gradients()
    flops = [t.flop_count for t in tasks]
    expected = 2.0 * flops[1] / max(flops[0] / 1e-3, flops[1] / 4e-3) - 4e-3
    assert g[1].similarity == pytest.approx(expected)
    assert g[2].similarity is None


def test_chain_gradient_of_default_and_user_objectives():
    f = weighted_latency([2, 3])
    assert f([1.0, 2.0]) == 8.0 and math.isinf(f([1.0, math.inf]))
    assert chain_gradients(f, [1.0, math.inf], weights=[2, 3]) == [2.0, None]
    numeric = chain_gradients(lambda g: max(g[0], g[1]) + 0.5 * g[2], [1.0, 3.0, 2.0])
    assert numeric == [pytest.approx(0.0), pytest.approx(1.0), pytest.approx(0.5)]


def test_task_stop_rules():
    st = TaskState()
    st.add_round([1.0, 2.0], early_stopping=4)
    st.add_round([1.5, 1.0], early_stopping=4)
    assert not st.done and st.stale_trials == 2
    st.add_round([3.0, 3.0], early_stopping=4)
    assert st.done and st.stop_reason == "no improvement in 4 trials"
    assert st.history == [1.0, 1.0, 1.0] and st.trials == 6
    creeping = TaskState()  # gains under MIN_GAIN are taken but do not reset the count
    creeping.add_round([1.0], early_stopping=3)
    creeping.add_round([0.995], early_stopping=3)
    creeping.add_round([0.99], early_stopping=3)
    assert creeping.best_cost_s == 0.99 and creeping.stale_trials == 2 and not creeping.done
    creeping.add_round([0.9], early_stopping=3)  # a 9 % gain resets it
    assert creeping.stale_trials == 0
    creeping.add_round([0.899], early_stopping=3)
    creeping.add_round([2.0], early_stopping=3)
    creeping.add_round([2.0], early_stopping=3)
    assert creeping.done and creeping.history[-1] == 0.899
    failing = TaskState()
    while not failing.done:
        failing.add_round([None] * 64, early_stopping=None)
    assert failing.trials == 192 and failing.trials >= MAX_ERRORS_IN_A_ROW
    empty = TaskState()
    empty.add_round([], early_stopping=None)
    assert empty.done and empty.stop_reason == "no new candidate"


def test_gradient_choice_ties_and_epsilon():
    states = [state_with([1.0]) for _ in range(3)]
    grads = [TaskGradient(0, gradient=-1.0), TaskGradient(1, gradient=-2.0),
             TaskGradient(2, gradient=-2.0)]  # fmt: skip
    picks = {gradient_task(states, grads, np.random.default_rng(s), 0.0) for s in range(20)}
    assert picks == {(1, "gradient"), (2, "gradient")}  # ties broken at random
    eps = {gradient_task(states, grads, np.random.default_rng(s), 1.0)[1] for s in range(5)}
    assert eps == {"epsilon"}
    states[0] = TaskState()
    assert gradient_task(states, grads, np.random.default_rng(0), 1.0) == (0, "warmup")
    assert round_robin_task([state_with([1.0]), TaskState(), state_with([1.0])]) == 1
