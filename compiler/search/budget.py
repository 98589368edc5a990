"""The evolution's population sized by time: the search a round waits for takes
at most a share of the wall time, whatever a program costs to score.

Ansor evolves 2048 programs a round and MetaSchedule 512, whatever a program
costs to lower and walk. Here a program of a direct conv costs about 8 ms to
score and one of a Winograd conv about 22 ms (its transform passes are chains
of selects: 164-350 expression nodes a stage against 14 for the GEMM). With a
population of 512 the conv28w rounds waited 27 s for the search against 38 s
of building: 39 % of the wall time (the target is under 25 %).

What counts is what a round waits for: its proposal and whatever of the search
ahead (ahead.py) did not fit beside the timing. The tuning loop reports it
after every round with the round's building and timing time:

    >>> budget = SearchBudget(share=0.2)
    >>> budget.note_round(search_s=27.0, tuning_s=42.0, candidates=64, population=512)
    >>> budget.population(64, floor=128, ceiling=512)
    199

Both costs are running means (the latest round weighs half), so the population
follows a task whose builds or programs get slower; until a round is reported
it is the ceiling. A direct conv's search mostly hides beside its timing and
keeps the ceiling. The population depends on timings: two runs with the same
seed may evolve different populations (a fixed one: `search_share=None` in the
policy).
"""

from __future__ import annotations

SMOOTHING = 0.5  # weight of the latest round in the running means


class SearchBudget:
    """Search time per program evolved and tuning time per candidate, and the
    population they allow for a request (see the module docstring)."""

    def __init__(self, share: float = 0.2) -> None:
        if not 0.0 < share < 1.0:
            raise ValueError(f"search share must be in (0, 1), got {share}")
        self.share = share
        self.search_s_per_program: float | None = None
        self.tuning_s_per_candidate: float | None = None

    def note_round(
        self, *, search_s: float, tuning_s: float, candidates: int, population: int
    ) -> None:
        """A round waited `search_s` for a search that evolved `population` programs
        and spent `tuning_s` building and timing its `candidates`."""
        if population > 0 and search_s > 0:
            self.search_s_per_program = _mean(self.search_s_per_program, search_s / population)
        if candidates > 0 and tuning_s > 0:
            self.tuning_s_per_candidate = _mean(self.tuning_s_per_candidate, tuning_s / candidates)

    def population(self, n_out: int, *, floor: int, ceiling: int) -> int:
        """The population for a request of `n_out` candidates, within [floor, ceiling]:
        the search is `share` of the search and tuning of the round."""
        if self.search_s_per_program is None or self.tuning_s_per_candidate is None:
            return ceiling
        allowed_s = self.share / (1.0 - self.share) * self.tuning_s_per_candidate * n_out
        return max(floor, min(ceiling, int(allowed_s / self.search_s_per_program)))


def _mean(before: float | None, latest: float) -> float:
    return latest if before is None else (1.0 - SMOOTHING) * before + SMOOTHING * latest
