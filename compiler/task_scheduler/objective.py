"""The scheduler's objective f: what one number the trial budget should lower.

The default is the estimated end-to-end latency, sum over tasks of weight x
best latency (docs/task-scheduler.md#gradient). A user objective takes the same input, the best
latency of every task in seconds (inf for a task with no valid measurement),
and returns f in seconds; it should not decrease when a latency decreases
(for example a latency budget per model when several models share one run:
`lambda g: max(0, g[0] + g[1] - 0.010) + g[2] + g[3]`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Objective = Callable[[Sequence[float]], float]

RELATIVE_STEP = 1e-6  # finite-difference step for a user objective's derivative


def weighted_latency(weights: Sequence[float]) -> Objective:
    """f(g) = sum_i weights[i] * g[i]: a network's estimated latency."""
    w = tuple(float(x) for x in weights)

    def f(best_s: Sequence[float]) -> float:
        return math.fsum(wi * gi for wi, gi in zip(w, best_s))

    return f


def chain_gradients(
    objective: Objective, best_s: Sequence[float], weights: Sequence[float] | None = None
) -> list[float | None]:
    """df/dg_i for every task with a finite best latency (None for the others).

    With `weights` (the default objective) the derivative is the weight itself;
    otherwise a one-sided finite difference of `objective`, where unmeasured
    tasks enter as 0 s: their latency is a constant no round of another task
    can change.
    """
    if weights is not None:
        return [float(w) if math.isfinite(g) else None for w, g in zip(weights, best_s)]
    base = [g if math.isfinite(g) else 0.0 for g in best_s]
    f0 = objective(base)
    out: list[float | None] = []
    for i, g in enumerate(best_s):
        if not math.isfinite(g) or g <= 0:
            out.append(None)
            continue
        step = g * RELATIVE_STEP
        lowered = list(base)
        lowered[i] = g - step
        out.append(max(0.0, (f0 - objective(lowered)) / step))
    return out
