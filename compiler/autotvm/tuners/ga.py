"""Genetic-algorithm tuner (docs/autotvm.md#knobs): a config is a genome of knob choices.

Generation 0 is random. Once a generation is handed out, the next one is bred
from it and the elites (the best configs seen): parents drawn with probability
proportional to fitness (1 / cost), single-point crossover, then each knob
redrawn with probability `mutation_prob`. Children already proposed are dropped
and bred again; when breeding stalls (a small or spent neighbourhood) the rest
of the generation is random.
"""

from __future__ import annotations

import numpy as np

from compiler.autotvm.space import ConfigSpace
from compiler.autotvm.tuners.base import Tuner, fitness

BREED_TRIES_PER_CHILD = 20


class GATuner(Tuner):
    """Population 100, 3 elites, per-knob mutation 0.1 by default."""

    def __init__(
        self,
        space: ConfigSpace,
        *,
        seed: int = 0,
        pop_size: int = 100,
        elite_num: int = 3,
        mutation_prob: float = 0.1,
    ) -> None:
        super().__init__(space, seed=seed)
        self.pop_size = max(1, min(pop_size, self.size))
        self.elite_num = elite_num
        self.mutation_prob = mutation_prob
        self.dims = np.asarray(space.dims, dtype=np.int64)
        self.generation: list[int] = []  # the current generation, in hand-out order
        self.pt = 0
        self.generations = 0

    def _next(self) -> int | None:
        while self.pt < len(self.generation) and self.generation[self.pt] in self.proposed:
            self.pt += 1
        if self.pt >= len(self.generation):
            self.generation = self._breed() if self.generation else self._random_generation()
            self.pt, self.generations = 0, self.generations + 1
            if not self.generation:
                return None
        self.pt += 1
        return self.generation[self.pt - 1]

    def _random_generation(
        self, taken: set[int] | None = None, count: int | None = None
    ) -> list[int]:
        taken = set() if taken is None else taken
        out: list[int] = []
        for _ in range(self.pop_size if count is None else count):
            index = self.random_unproposed()
            tries = 0
            while index is not None and index in taken and tries < 8:
                index, tries = self.random_unproposed(), tries + 1
            if index is None or index in taken:
                break
            taken.add(index)
            out.append(index)
        return out

    def _parents(self) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """This generation's measured members and the elites, with selection weights."""
        measured = [i for i in self.generation if i in self.costs]
        elites = sorted(self.costs, key=self.costs.__getitem__)[: self.elite_num]
        pool = list(dict.fromkeys(measured + elites))
        scores = np.asarray([fitness(self.costs[i]) for i in pool])
        if scores.sum() <= 0:
            scores = np.ones(len(pool))
        return [self.space.point(i) for i in pool], scores / scores.sum()

    def _breed(self) -> list[int]:
        genomes, probs = self._parents()
        if not genomes:
            return self._random_generation()
        n_knobs = len(self.dims)
        children: list[int] = []
        taken: set[int] = set()
        for _ in range(self.pop_size * BREED_TRIES_PER_CHILD):
            if len(children) >= self.pop_size:
                break
            a, b = self.rng.choice(len(genomes), size=2, p=probs)
            cut = int(self.rng.integers(n_knobs + 1))
            child = np.asarray(genomes[a][:cut] + genomes[b][cut:], dtype=np.int64)
            mutate = self.rng.random(n_knobs) < self.mutation_prob
            child[mutate] = self.rng.integers(self.dims[mutate])
            index = self.space.index_of(child.tolist())
            if index not in self.proposed and index not in taken:
                taken.add(index)
                children.append(index)
        missing = self.pop_size - len(children)
        return children + self._random_generation(taken, missing) if missing else children
