"""Search policies behind one interface: "the next N candidates for this task"
and "here are their results". `create("sketch" | "random" | "template", ...)` builds
one; `policy_for_task` also falls back from "template" to "sketch" for ops without one.

The task scheduler and the pipeline only talk to this interface; the template
policy (AutoTVM-style, compiler/autotvm) plugs in the same way.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from compiler.schedule.state import State
from compiler.schedule.steps import Step
from compiler.search.annotate import AnnotateConfig, sample_population
from compiler.search.budget import SearchBudget
from compiler.search.evolution import (
    EvolutionConfig,
    Exploration,
    explore,
    population_size,
    sample_fresh,
    select,
)
from compiler.search.sketch import generate_sketches
from compiler.search.transplant import compatible, sketch_index, transplant
from compiler.te.dag import ComputeDAG


class SearchPolicy(ABC):
    """Proposes candidates for one task and learns from their measurements."""

    def __init__(self, dag: ComputeDAG, *, seed: int = 0, cores: int | None = None):
        self.dag = dag
        self.rng = np.random.default_rng(seed)
        self.cores = cores or os.cpu_count() or 1
        self.measured: dict[tuple[Step, ...], float] = {}  # steps -> best cost (inf: failed)
        self.taken: set[tuple[Step, ...]] = set()  # measured by another run (note_taken)
        self.states: dict[tuple[Step, ...], State] = {}

    @abstractmethod
    def next_candidates(self, n: int) -> list[State]:
        """Up to n distinct candidates never measured before (fewer: the space is spent)."""

    def prepare(self, n: int, pending: Sequence[State]) -> None:
        """Do ahead, while `pending` are being measured, what the next
        `next_candidates(n)` can: called from another thread, and no other method of
        the policy is called until it returns. Nothing by default."""

    def update(self, states: Sequence[State], costs_s: Sequence[float | None]) -> None:
        """Record measured costs (None or inf for a failed candidate)."""
        for s, c in zip(states, costs_s):
            cost = float("inf") if c is None else float(c)
            self.measured[s.steps] = min(cost, self.measured.get(s.steps, float("inf")))
            self.states[s.steps] = s

    def note_round(self, *, search_s: float, tuning_s: float, candidates: int) -> None:
        """A round of `candidates` waited `search_s` for this policy's search and spent
        `tuning_s` building and timing them (a policy may size its search by it);
        nothing by default."""

    def meta_for(self, state: State) -> dict[str, Any]:
        """What the policy knows about a candidate it proposed, stored with its record
        (a template policy: the config); empty by default."""
        return {}

    def note_meta(self, state: State, meta: dict[str, Any]) -> None:
        """A resumed record's meta (as `meta_for` gave it), before `update` with it."""

    def note_taken(self, states: Sequence[State]) -> None:
        """Candidates another run on the same records database is measuring (it claimed
        them first): never proposed again by this policy."""
        self.taken.update(s.steps for s in states)

    def is_measured(self, s: State) -> bool:
        """Measured, or being measured by another run (not to be proposed again)."""
        return s.steps in self.measured or s.steps in self.taken

    def best(self, k: int = 1) -> list[tuple[float, State]]:
        ranked = sorted(
            ((c, st) for st, c in self.measured.items() if c < float("inf")), key=lambda p: p[0]
        )
        return [(c, self.states[st]) for c, st in ranked[:k]]

    @property
    def best_cost_s(self) -> float:
        got = self.best(1)
        return got[0][0] if got else float("inf")


class RandomPolicy(SearchPolicy):
    """Random annotation of the sketches, no cost model (the baseline)."""

    def __init__(self, dag: ComputeDAG, *, seed: int = 0, cores: int | None = None, **_: object):
        super().__init__(dag, seed=seed, cores=cores)
        self.sketches = generate_sketches(dag, cores=self.cores)
        self.annotate = AnnotateConfig(cores=self.cores)

    def next_candidates(self, n: int) -> list[State]:
        pool = sample_population(self.sketches, n * 3, self.rng, self.annotate)
        return [s for s in pool if not self.is_measured(s)][:n]


class SketchPolicy(SearchPolicy):
    """Ansor: sketches, random annotation, evolution under a learned cost model.

    One deviation, on by default (`transplants`): every round first proposes the
    best measured program's tile sizes in each other sketch they fit, those not
    measured yet (at most a quarter of the round; compiler/search/transplant.py),
    then the evolution's choice. Ansor's population settles on one sketch and never
    learns what the others would make of its best tiles.

    Another (`search_share`, 0.2 by default; None: always `population`): the
    population is sized so that the search a round waits for takes about that
    share of its wall time, from the rounds' search and tuning times
    (compiler/search/budget.py), between `min_population` and `population`.
    """

    def __init__(
        self,
        dag: ComputeDAG,
        *,
        model,
        seed: int = 0,
        cores: int | None = None,
        population: int = 512,
        vector_cap: int = 16,
        crossover: float = 0.0,
        sketch_quota: int = 0,
        untrained_as_drawn: float = 0.0,
        transplants: bool = True,
        search_share: float | None = 0.2,
    ):
        super().__init__(dag, seed=seed, cores=cores)
        self.model = model
        self.sketches = generate_sketches(dag, cores=self.cores)
        # per sketch, the sketches its programs' tile sizes fit (compiler/search/transplant.py)
        self.compatible = compatible(self.sketches) if transplants else [[] for _ in self.sketches]
        annotate = AnnotateConfig(cores=self.cores, vector_cap=vector_cap)
        self.conf = EvolutionConfig(
            population=population,
            annotate=annotate,
            crossover_prob=crossover,
            sketch_quota=sketch_quota,
            untrained_as_drawn=untrained_as_drawn,
        )
        self.budget = SearchBudget(search_share) if search_share is not None else None
        self._origin: dict[tuple, int] = {}  # steps -> sketch index, kept across rounds
        self._ahead: tuple[int, Exploration] | None = None  # (n, what `prepare` found)
        self._fresh_ahead: list[State] | None = None  # or what it sampled, model untrained
        self.last_population = 0  # the population of the latest evolution

    def prepare(self, n: int, pending: Sequence[State]) -> None:
        """Run the evolution for the next round with the model as it is: the next
        `next_candidates(n)` only scores what it found again with the model that has
        learned from `pending`'s results (their features are cached), and chooses.
        While the model is untrained (its scores would be random) only the random
        programs the next evolution starts from are sampled, with their features."""
        if not getattr(self.model, "is_trained", True):  # its scores would be random:
            self._fresh_ahead = self._sample_fresh(n)  # only sample, and their features
            self._prefetch(self._fresh_ahead)
            return
        waiting = {s.steps for s in pending}
        found = self._explore(n, lambda s: self.is_measured(s) or s.steps in waiting)
        self._prefetch([s for _, s in found.scored.values()])
        self._ahead = (n, found)

    def _prefetch(self, states: list[State]) -> None:
        prefetch = getattr(self.model, "prefetch", None)  # features, if it ran untrained
        if prefetch is not None:
            prefetch(states)

    def _sample_fresh(self, n: int) -> list[State]:
        return sample_fresh(self.sketches, n, self.rng, n_measured=len(self._seeds()),
                            conf=self.conf, origin=self._origin)  # fmt: skip

    def _seeds(self) -> list[State]:
        """The best measured programs the evolution may start from."""
        return [s for _, s in self.best(self.conf.population)]

    def next_candidates(self, n: int) -> list[State]:
        ahead, self._ahead = self._ahead, None
        drawn = self._as_drawn(n) if ahead is None else []
        drawn += self._transplants(max(1, n // 4), {s.steps for s in drawn})
        taken = {s.steps for s in drawn}

        def skip(s: State) -> bool:
            return self.is_measured(s) or s.steps in taken

        if ahead is not None and n <= ahead[0]:  # (fewer: say the baseline takes a slot)
            found, rescore = ahead[1], self.model
        else:
            fresh, self._fresh_ahead = self._fresh_ahead, None
            found, rescore = self._explore(n, skip, fresh), None
        out = drawn + select(
            found,
            n - len(drawn),
            self.rng,
            is_measured=skip,
            conf=self.conf,
            origin=self._origin,
            rescore=rescore,
        )
        # keep the sketch of what is measured or about to be; drop the rest of the round
        keep = {st.steps for st in out}
        self._origin = {k: v for k, v in self._origin.items() if k in keep or k in self.measured}
        return out

    def _transplants(self, limit: int, taken: set[tuple]) -> list[State]:
        """Up to `limit` unmeasured programs: the best measured program's tile sizes in
        each other sketch they fit (compiler/search/transplant.py)."""
        got = self.best(1)
        if not got:
            return []
        best = got[0][1]
        k = self._origin.get(best.steps)
        if k is None:
            k = sketch_index(best, self.sketches)
        if k is None:
            return []  # not a program of the sketches (say the default schedule)
        out: list[State] = []
        for j in self.compatible[k]:
            moved = transplant(best, self.sketches[k], self.sketches[j], self.conf.annotate)
            if moved is None or self.is_measured(moved) or moved.steps in taken:
                continue
            taken.add(moved.steps)
            self._origin.setdefault(moved.steps, j)
            out.append(moved)
            if len(out) == limit:
                break
        return out

    def _as_drawn(self, n: int) -> list[State]:
        """While the model is untrained, `untrained_as_drawn` of the round: random
        programs measured as drawn (the rest comes from the evolution as usual)."""
        if not self.conf.untrained_as_drawn or getattr(self.model, "is_trained", True):
            return []
        if self._fresh_ahead is None:
            self._fresh_ahead = self._sample_fresh(n)
        k = round(n * self.conf.untrained_as_drawn)
        return [s for s in self._fresh_ahead if not self.is_measured(s)][:k]

    def _explore(
        self, n: int, is_measured: Callable[[State], bool], fresh: list[State] | None = None
    ) -> Exploration:
        conf = self.conf
        if self.budget is not None:
            size = self.budget.population(
                n, floor=conf.min_population, ceiling=population_size(conf, n)
            )
            conf = dataclasses.replace(conf, population=size)
        found = explore(
            self.sketches,
            self.model,
            n,
            self.rng,
            is_measured=is_measured,
            best_measured=self._seeds(),
            conf=conf,
            origin=self._origin,
            fresh=fresh,
        )
        self.last_population = found.population
        return found

    def note_round(self, *, search_s: float, tuning_s: float, candidates: int) -> None:
        """For the budget, with the population of the latest evolution (the one the
        round waited for); not while the model is untrained (it scores at random,
        without features, so the search costs next to nothing)."""
        if self.budget is None or not getattr(self.model, "is_trained", True):
            return
        self.budget.note_round(
            search_s=search_s, tuning_s=tuning_s, candidates=candidates,
            population=self.last_population,
        )  # fmt: skip

    def update(self, states: Sequence[State], costs_s: Sequence[float | None]) -> None:
        super().update(states, costs_s)
        self.model.update(list(states), [float("inf") if c is None else c for c in costs_s])
