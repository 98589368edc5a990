"""Finalists timed side by side: a task's best few candidates and its default
schedule, interleaved round by round in one runner process, with nothing of ours
running beside them.

Timings taken while tuning share the machine with the builds and the search on
the other core, and the best of hundreds of noisy timings is optimistic; a
network compiled from them can be slower than its default schedules. So before
it is compiled, each task's finalists run here, each round timing every one of
them (the first place rotating), and the network takes the fastest
(models/retime.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from compiler.measure.evaluator import make_arrays, time_calls
from compiler.measure.types import MeasureSettings, RunRequest


def side_by_side(
    requests: Sequence[RunRequest], settings: MeasureSettings, rounds: int
) -> list[list[float]]:
    """In a runner process: seconds per call of each request in each round."""
    from compiler.runtime import load

    kernels = [load(r.artifact) for r in requests]  # kept alive while their calls run
    calls = [
        k.bind(*make_arrays(r.artifact, r.n_inputs, settings.seed))
        for k, r in zip(kernels, requests)
    ]
    once = replace(settings, repeat=1)
    times: list[list[float]] = [[] for _ in calls]
    for r in range(rounds):
        for i in [(r + j) % len(calls) for j in range(len(calls))]:
            times[i].append(time_calls(calls[i], once)[0])
    return times
