"""The evolution's population sized by time: searching takes at most a share of
the wall time, whatever a program costs to score.

Ansor evolves 2048 programs a round and MetaSchedule 512, whatever a program
costs to lower and walk. Here a program of a direct conv costs about 8 ms to
score and one of a Winograd conv about 22 ms (its transform passes are chains
of selects: 164-350 expression nodes a stage against 14 for the GEMM). A
population of 512 then searched 30 s a round for conv28w against 38 s of
building, 39 % of the wall time (the target is under 25 %).

    >>> budget = SearchBudget(share=0.2)
    >>> budget.note_search(seconds=30.0, population=512)    # an evolution ran
    >>> budget.note_tuning(seconds=42.0, candidates=64)     # its round was built and timed
    >>> budget.population(64, floor=128, ceiling=512)
    179

Both costs are running means (the latest measurement weighs half), so the
population follows a task whose builds or programs get slower. Until both are
known the population is the ceiling. The search ahead (ahead.py) partly hides
behind the timing, so the share it costs the wall time is at most `share`.
The population depends on timings: two runs with the same seed may evolve
different populations (ask for a fixed one with `share=None` in the policy).
"""

from __future__ import annotations

SMOOTHING = 0.5  # weight of the latest measurement in the running means


class SearchBudget:
    """Search time per program and tuning time per candidate, and the population
    they allow for a request (see the module docstring)."""

    def __init__(self, share: float = 0.2) -> None:
        if not 0.0 < share < 1.0:
            raise ValueError(f"search share must be in (0, 1), got {share}")
        self.share = share
        self.search_s_per_program: float | None = None
        self.tuning_s_per_candidate: float | None = None

    def note_search(self, seconds: float, population: int) -> None:
        """An evolution of `population` programs took `seconds` (scoring included)."""
        if population > 0 and seconds > 0:
            self.search_s_per_program = _mean(self.search_s_per_program, seconds / population)

    def note_tuning(self, seconds: float, candidates: int) -> None:
        """Building and timing `candidates` took `seconds` of wall time."""
        if candidates > 0 and seconds > 0:
            self.tuning_s_per_candidate = _mean(self.tuning_s_per_candidate, seconds / candidates)

    def population(self, n_out: int, *, floor: int, ceiling: int) -> int:
        """The population for a request of `n_out` candidates, within [floor, ceiling]:
        its search takes `share` of the search and tuning of `n_out` candidates."""
        if self.search_s_per_program is None or self.tuning_s_per_candidate is None:
            return ceiling
        allowed_s = self.share / (1.0 - self.share) * self.tuning_s_per_candidate * n_out
        return max(floor, min(ceiling, int(allowed_s / self.search_s_per_program)))


def _mean(before: float | None, latest: float) -> float:
    return latest if before is None else (1.0 - SMOOTHING) * before + SMOOTHING * latest
