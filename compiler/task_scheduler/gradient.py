"""The gradient of f with respect to one more round of a task (docs/task-scheduler.md#gradient).

For task i after t_i rounds with best latency g_i and best-latency history h:

    backward   = (h[t_i-1] - h[t_i-1-W]) / W          (0 while the history is short;
                                                        with short_history, W shrinks
                                                        to the t_i - 1 rounds there are)
    optimistic = -g_i / t_i                            (the next round gains 1/t_i)
    similarity = beta * C_i / max_j(C_j / g_j) - g_i   (j: measured tasks of i's group;
                                                        only when it has another one)
    forward    = max(min(optimistic, similarity), -gap_i)
    gap_i      = max(0, g_i - C_i / max_j(C_j / g_j))    (j: every measured task)
    gradient   = df/dg_i * (alpha * backward + (1 - alpha) * forward)

Every term is <= 0 for a sensible objective; the most negative gradient marks
the task whose next round should lower f most.

Deviation, the default (`forward="roofline"`; `"ansor"` is Ansor's term alone): a
round is expected to gain at most the task's gap to the roofline, its FLOPs at the
fastest throughput any task of the run has reached. Ansor's -g/t keeps giving rounds
to costly tasks already at that throughput (a network's big matmuls and convs, whose
default schedules run near the FMA peak), which gain nothing; tasks with few FLOPs
(transposes, softmax, layer norm) are not capped. Replayed on measured curves
(tests/bench/replay_scheduler.py: bert_encoder and resnet18 2 seeds each, a ResNet-50
one, 3-5 passes; docs/benchmarks.md#task-scheduler): the trials to reach
round-robin's final f, as a multiple of the oracle's, median 1.69 against Ansor's 1.82,
never reached in 2 cases of 15 against 3, sooner in 8 and later in 6.

Deviation, off (`forward="observed"`): Ansor's optimistic term
expects the next round to cut g_i by 1/t_i whatever the task has shown, so in
runs of a few rounds per task it allocates rounds in proportion to weight x
latency. The observed estimate expects the next round to cut g_i by r_i, a
shrinkage mean of the task's own relative gains per round after its first,

    r_i = (sum of its relative gains + K * r_0) / (its rounds after the first + K)

with r_0 the mean relative gain per such round over every task so far
(PRIOR_GAIN before there is one) and K = PRIOR_ROUNDS: a task that keeps
gaining keeps its rounds, a stalled one falls back below the others, and one
not yet retried is valued at the run's average. Measured (bench_scheduler,
20-trial rounds, shared warm-ups): worse than round-robin on bert_encoder (f
1.036 / 1.032 / 0.953 ms vs 1.005 / 0.881 / 0.945 over 3 seeds: it keeps
feeding the task that gained first until early stopping ends it, while a
task's first retry, valued at the average, is where most gains come; Ansor's
1/t encodes those diminishing returns), better on resnet18 (18.918 / 19.096
vs 19.153 / 19.138 ms). Mixed, so it is off by default.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from compiler.task_scheduler.task_state import TaskState


@dataclass(frozen=True)
class GradientConfig:
    alpha: float = 0.2  # weight of the backward (observed) term against the forward estimate
    beta: float = 2.0  # how far below its group's best GFLOP/s a task is expected to stay
    backward_window: int = 3  # W, in rounds
    # Deviation (off by default): Ansor's backward term is 0 until a task has had W
    # rounds after its first, so in short runs (a few rounds per task) it never
    # speaks. With short_history it averages over the rounds there are.
    short_history: bool = False
    forward: str = "roofline"  # or "ansor", "observed" (see the module docstring)


FORWARD_KINDS = ("ansor", "observed", "roofline")
PRIOR_GAIN = 0.1  # r_0 before any task has had a second round
PRIOR_ROUNDS = 2.0  # K: how many rounds of evidence the prior is worth


@dataclass(frozen=True)
class TaskGradient:
    """The terms of one task's gradient (None: not computed, the task is done or unwarmed).

    `gradient` is -inf for a live task with no valid measurement yet: f is
    unknown until it has one, so it goes first.
    """

    task: int
    backward: float | None = None
    forward: float | None = None
    similarity: float | None = None
    gradient: float | None = None

    def to_json(self) -> dict[str, float | int | None]:
        def num(x: float | None) -> float | None:
            return x if x is not None and math.isfinite(x) else None

        return {
            "task": self.task,
            "backward": num(self.backward),
            "forward": num(self.forward),
            "similarity": num(self.similarity),
            "gradient": num(self.gradient),
        }


def backward_term(history: Sequence[float], window: int, short_history: bool = False) -> float:
    """Mean best-latency change per round over the last `window` rounds (<= 0);
    with `short_history`, over fewer when fewer are there."""
    t = len(history)
    if short_history:
        window = min(window, t - 1)
    if window < 1 or t - 1 - window < 0:
        return 0.0
    newer, older = history[t - 1], history[t - 1 - window]
    if not (math.isfinite(newer) and math.isfinite(older)):
        return 0.0
    return (newer - older) / window


def similarity_term(
    i: int, states: Sequence[TaskState], flops: Sequence[int], group: Sequence[int], beta: float
) -> float | None:
    """The latency task i would have at beta x its group's best throughput, minus g_i."""
    measured = [j for j in group if states[j].is_measured]
    if not any(j != i for j in measured):
        return None
    best_flops_per_s = max(flops[j] / states[j].best_cost_s for j in measured)
    if best_flops_per_s <= 0:
        return None
    return beta * flops[i] / best_flops_per_s - states[i].best_cost_s


def task_gradients(
    states: Sequence[TaskState],
    flops: Sequence[int],
    groups: Sequence[Sequence[int]],
    chain: Sequence[float | None],
    conf: GradientConfig,
) -> list[TaskGradient]:
    """Every task's gradient terms; `chain[i]` is df/dg_i (None when g_i is unknown)."""
    prior = pooled_gain(states) if conf.forward == "observed" else None
    roof = fastest_throughput(states, flops) if conf.forward == "roofline" else None
    out = []
    for i, st in enumerate(states):
        if st.done or st.rounds == 0:
            out.append(TaskGradient(i))
        elif not st.is_measured or chain[i] is None:
            out.append(TaskGradient(i, gradient=-math.inf))
        else:
            out.append(_gradient(i, states, flops, groups[i], chain[i], conf, prior, roof))  # type: ignore[arg-type]
    return out


def fastest_throughput(states: Sequence[TaskState], flops: Sequence[int]) -> float | None:
    """The most FLOPs per second any measured task reached: the roofline the `roofline`
    forward estimate caps each task's expected gain by (None: nothing measured)."""
    rates = [
        f / st.best_cost_s for f, st in zip(flops, states) if st.is_measured and st.best_cost_s > 0
    ]
    return max(rates, default=None)


def roofline_gap(best_s: float, flops: int, roof: float | None) -> float:
    """How far task i's best latency is above its FLOPs at the fastest task's throughput
    (>= 0): the most a round can cut it if compute-bound kernels all reach that rate."""
    if roof is None or roof <= 0:
        return best_s
    return max(0.0, best_s - flops / roof)


def relative_gains(history: Sequence[float]) -> list[float]:
    """The fraction of the best latency each round after the first cut (>= 0)."""
    return [
        (a - b) / a
        for a, b in itertools.pairwise(history)
        if math.isfinite(a) and math.isfinite(b) and a > 0
    ]


def pooled_gain(states: Sequence[TaskState]) -> float:
    """r_0: the mean relative gain per round after the first, over every task."""
    gains = [g for st in states for g in relative_gains(st.history)]
    return sum(gains) / len(gains) if gains else PRIOR_GAIN


def observed_forward(history: Sequence[float], best: float, prior: float) -> float:
    """-g_i * r_i: the next round's expected change of the best latency."""
    gains = relative_gains(history)
    rate = (sum(gains) + PRIOR_ROUNDS * prior) / (len(gains) + PRIOR_ROUNDS)
    return -best * rate


def _gradient(
    i: int,
    states: Sequence[TaskState],
    flops: Sequence[int],
    group: Sequence[int],
    chain: float,
    conf: GradientConfig,
    prior: float | None = None,
    roof: float | None = None,
) -> TaskGradient:
    st = states[i]
    backward = backward_term(st.history, conf.backward_window, conf.short_history)
    if prior is None:
        forward = -st.best_cost_s / st.rounds
    else:
        forward = observed_forward(st.history, st.best_cost_s, prior)
    similarity = similarity_term(i, states, flops, group, conf.beta)
    if similarity is not None:
        forward = min(forward, similarity)
    if conf.forward == "roofline":
        forward = max(forward, -roofline_gap(st.best_cost_s, flops[i], roof))
    grad = chain * (conf.alpha * backward + (1 - conf.alpha) * forward)
    return TaskGradient(i, backward, forward, similarity, grad)
