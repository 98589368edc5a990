"""Inter-op parallelism: independent kernels of a network run at the same time.

Within one kernel, parallel loops share the work among the pool's threads (intra-op).
Where a network has kernels none of which reads another's output (the two expand
convs of a fire module, a residual block's shortcut beside its first conv, the
query, key and value projections of attention), they can instead run side by side,
each on one thread: worth it when the kernels are too small for their own loops to
keep every thread busy, not when one kernel is much larger than the others.

`candidate_widths` finds those kernels in the execution order: runs of consecutive
subgraphs that do not depend on each other. `choose_widths` decides for each run by
measured cost, at the network's thread count: the run's calls made one after
another (intra-op) and at the same time (compiler/runtime/pool.c `st_run_steps`)
are timed interleaved, and a run keeps side-by-side execution only where that was
at least GAIN faster. The memory plan (models/memory_plan.py `allocate`) counts
lifetimes in steps, so kernels of one step never share memory.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from compiler.measure.interleave import time_interleaved
from models.partition import Subgraph

# side by side must be this much faster than one after another to be kept
GAIN = 0.95
# the widest step considered (the pool balances more calls than threads on its own)
MAX_WIDTH = 8
# A run is not measured when one subgraph holds this share of its work. Measured on
# 2 threads (Zen 4): SqueezeNet's expand convs (a 1x1 and a 3x3, 90 % in the 3x3) and
# ResNet-18's shortcut beside a 3x3 conv ran 1.75-1.9x slower side by side, while
# three equal projections of attention ran 1.3x slower and four equal matrix-vector
# heads 1.1x faster.
MAX_SHARE = 0.8
# Nor a run of less work than this (task_work units: FLOPs and elements): an unrolled
# GRU's steps (900-4,600 units, 0.5 us in sequence and 0.9 side by side; measuring its
# 48 runs took 4.8 s). The smallest run that won was 43,000 (a UNet's, 15.9 -> 10.7 us).
MIN_WORK = 16_000


@dataclass(frozen=True)
class StepChoice:
    """One run of independent subgraphs (their positions in the order) and the seconds
    per call of its calls made in sequence and side by side."""

    first: int
    width: int
    sequential_s: float
    side_by_side_s: float

    @property
    def side_by_side(self) -> bool:
        return self.side_by_side_s < GAIN * self.sequential_s


def candidate_widths(
    subgraphs: Sequence[Subgraph], work: Callable[[Subgraph], float] | None = None
) -> list[int]:
    """Step widths over `subgraphs` (in order) that put every maximal run of consecutive
    independent subgraphs (none reads another's output) in one step, at most
    MAX_WIDTH wide; every other subgraph is a step of its own. With `work` (a
    subgraph's cost), a run whose largest subgraph holds at least MAX_SHARE of the
    run's work is split too: side by side it cannot end before that one kernel on one
    thread, which intra-op loops beat unless they scale below 1 / MAX_SHARE; so is a run
    of less than MIN_WORK in all."""
    widths: list[int] = []
    outputs: set[str] = set()
    for sub in subgraphs:
        if widths and widths[-1] < MAX_WIDTH and outputs and not outputs & set(sub.params):
            widths[-1] += 1
            outputs.add(sub.output)
        else:
            widths.append(1)
            outputs = {sub.output}
    if work is None:
        return widths
    balanced: list[int] = []
    first = 0
    for width in widths:
        costs = [work(sub) for sub in subgraphs[first : first + width]]
        keep = width > 1 and max(costs) < MAX_SHARE * sum(costs) and sum(costs) >= MIN_WORK
        balanced.extend([width] if keep else [1] * width)
        first += width
    return balanced


def choose_widths(
    widths: Sequence[int],
    run_calls: Callable[[int, int, bool], Callable[[], None] | None],
    key: Callable[[int, int], Hashable] | None = None,
) -> tuple[list[int], list[StepChoice]]:
    """Keep a step of several calls only where running them side by side measured
    faster; split the others into steps of one. `run_calls(first, width,
    side_by_side)` gives a callable that makes calls [first, first + width) in
    sequence or side by side (None: cannot, the step is split). Steps of equal
    `key(first, width)` (the same kernels: a transformer's layers) are measured once."""
    chosen: list[int] = []
    choices: list[StepChoice] = []
    measured: dict[Hashable, StepChoice] = {}
    first = 0
    for width in widths:
        keep = False
        if width > 1:
            k = key(first, width) if key is not None else (first, width)
            if k in measured:
                keep = measured[k].side_by_side
            else:
                sequential = run_calls(first, width, False)
                together = run_calls(first, width, True)
                if sequential is not None and together is not None:
                    seq_s, side_s = time_interleaved(sequential, together)
                    choice = StepChoice(first, width, seq_s, side_s)
                    choices.append(choice)
                    measured[k] = choice
                    keep = choice.side_by_side
        chosen.extend([width] if keep else [1] * width)
        first += width
    return chosen, choices
