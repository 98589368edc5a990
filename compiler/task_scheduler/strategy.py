"""Which task gets the next round: the gradient policy or plain round-robin.

Both are pure functions of the task states and a random generator, so the
same states and seed give the same choice (after a resume too: the scheduler
seeds the generator with (seed, global round index)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compiler.task_scheduler.gradient import TaskGradient
from compiler.task_scheduler.task_state import TaskState

STRATEGIES = ("gradient", "round-robin")

# choice labels in the decision log
WARMUP, GRADIENT, EPSILON, ROUND_ROBIN = "warmup", "gradient", "epsilon", "round-robin"


def alive(states: Sequence[TaskState]) -> list[int]:
    return [i for i, st in enumerate(states) if not st.done]


def warmup_task(states: Sequence[TaskState]) -> int | None:
    """The first live task that has not had a round yet."""
    return next((i for i, st in enumerate(states) if not st.done and st.rounds == 0), None)


def round_robin_task(states: Sequence[TaskState]) -> int | None:
    """The live task with the fewest rounds (lowest index on ties): a fair rotation."""
    live = alive(states)
    return min(live, key=lambda i: (states[i].rounds, i)) if live else None


def gradient_task(
    states: Sequence[TaskState],
    gradients: Sequence[TaskGradient],
    rng: np.random.Generator,
    eps_greedy: float,
) -> tuple[int, str] | None:
    """(task, choice): a warm-up round first, else with probability `eps_greedy` a
    random live task, else the live task with the most negative gradient (ties at
    random)."""
    first = warmup_task(states)
    if first is not None:
        return first, WARMUP
    live = alive(states)
    if not live:
        return None
    if rng.random() < eps_greedy:
        return int(live[rng.integers(len(live))]), EPSILON
    grads = {i: gradients[i].gradient for i in live}
    lowest = min(g for g in grads.values() if g is not None)
    ties = [i for i, g in grads.items() if g == lowest]
    pick = ties[0] if len(ties) == 1 else int(ties[rng.integers(len(ties))])
    return pick, GRADIENT
