"""Evolutionary search under a cost model (docs/search.md#evolution).

Per round: an initial population of fresh random programs plus up to 20 % of
the best measured ones; `generations` rounds of scoring with the cost model,
keeping the best unmeasured distinct programs seen, roulette selection of
parents on the score, mutation with probability 0.85 (`explore`). The output
is the best predicted (1 - eps) share of the request plus eps random fresh
programs (`select`, which may score the explored programs again with a model
that has learned since: compiler/search/ahead.py).

Deviation: Ansor evolves a fixed population (2048) whatever the round asks for.
Here the population is 8 programs per candidate requested, between 128 and
`population` (512): a 64-candidate round (tune-op) is unchanged, while the 8-
candidate rounds of a short whole-network run no longer spend 2048 feature
extractions (~17 s on a ResNet-18 conv task here, 120 states/s) to pick 8.

Deviation, off by default (`sketch_quota`): within two or three rounds the
population settles on one sketch (conv28c: 61-63 of 64 candidates from one
sketch from the third round on), since roulette selection follows the
model, the measured seeds all come from the best family and mutation never
changes the sketch. When that family is the wrong one the search stays on it
(a conv28c run sat at 0.56x onnxruntime for 750 trials). With a quota of q,
every sketch with no candidate among the chosen gets its q best-predicted
programs measured in place of the lowest-ranked ones, so the model keeps
learning what the best of each other family is worth. Measured from scratch
with q = 1 on the two ResNet-18 convs (1000 trials, one run): 196.2 vs 188.7
and 179.8 vs 184.2 GFLOP/s, no difference beyond noise, so it stays off.

Deviation, off by default (`untrained_as_drawn`): Ansor evolves the first
round too, under the untrained model's random scores, so most of it is
mutated random programs. Which is better depends on the op: in seeds 0-3 the
first 64 trials of conv28c were better measured as drawn (their best 84-186
against 71-117 GFLOP/s evolved, in all 4 seeds) and those of conv56c better
evolved (136-163 against 82-136 as drawn, in all 4). With a share s, that share of the untrained round is
measured as drawn and the rest evolved as usual; docs/benchmarks.md#search-options-off
has the 1000-trial comparison with s = 0.5 (bench policy `sketch+drawn`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from compiler.schedule.state import State
from compiler.search.annotate import AnnotateConfig, sample_population
from compiler.search.mutate import crossover, mutate


class Scorer(Protocol):
    def predict(self, states: list[State]) -> np.ndarray: ...


@dataclass
class EvolutionConfig:
    population: int = 512
    generations: int = 4
    mutation_prob: float = 0.85
    eps_greedy: float = 0.05
    measured_share: float = 0.2
    # the population shrinks with the request: at least `per_candidate` programs per
    # candidate asked for, never fewer than `min_population` (see the module docstring)
    per_candidate: int = 8
    crossover_prob: float = 0.0  # share of children made by crossover (mutate.crossover)
    sketch_quota: int = 0  # per sketch absent from the chosen, its best-predicted (see above)
    min_population: int = 128
    # while the model is untrained: this share of the round measured as drawn at random
    untrained_as_drawn: float = 0.0
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)


@dataclass
class Exploration:
    """What one evolutionary search saw: every distinct unmeasured program with its
    best score, and the fresh random programs it started from (eps-greedy's pool)."""

    scored: dict[tuple, tuple[float, State]]
    fresh: list[State]
    n_sketches: int
    population: int = 0  # the population it evolved


def explore(
    sketches: list[State],
    model: Scorer,
    n_out: int,
    rng: np.random.Generator,
    *,
    is_measured,
    best_measured: list[State],
    conf: EvolutionConfig,
    origin: dict[tuple, int],
    fresh: list[State] | None = None,
) -> Exploration:
    """The generations of the search for a request of `n_out` (the expensive part:
    every new program's features), before choosing among what they found.
    `fresh`: the random programs to start from (`sample_fresh`), if sampled before."""
    conf = dataclasses.replace(conf, population=population_size(conf, n_out))
    n_seed = min(len(best_measured), int(conf.population * conf.measured_share))
    if fresh is None:
        fresh = sample_fresh(sketches, n_out, rng, n_measured=len(best_measured), conf=conf,
                             origin=origin)  # fmt: skip
    population = fresh + best_measured[:n_seed]
    best: dict[tuple, tuple[float, State]] = {}
    for gen in range(conf.generations):
        if not population:
            break
        scores = np.asarray(model.predict(population), dtype=float)
        for s, sc in zip(population, scores):
            if not is_measured(s) and (s.steps not in best or best[s.steps][0] < sc):
                best[s.steps] = (float(sc), s)
        if gen + 1 < conf.generations:
            population = _next_generation(population, scores, rng, conf, origin)
    return Exploration(best, fresh, len(sketches), conf.population)


def population_size(conf: EvolutionConfig, n_out: int) -> int:
    """`per_candidate` programs per candidate asked for, within [min_population, population]."""
    return min(conf.population, max(conf.min_population, conf.per_candidate * n_out))


def sample_fresh(
    sketches: list[State],
    n_out: int,
    rng: np.random.Generator,
    *,
    n_measured: int,
    conf: EvolutionConfig,
    origin: dict[tuple, int],
) -> list[State]:
    """The random programs an exploration for `n_out` starts from, beside up to
    `measured_share` of the population taken from the `n_measured` best measured."""
    size = population_size(conf, n_out)
    n_seed = min(n_measured, int(size * conf.measured_share))
    return sample_population(sketches, size - n_seed, rng, conf.annotate, origin)


def select(
    found: Exploration,
    n_out: int,
    rng: np.random.Generator,
    *,
    is_measured,
    conf: EvolutionConfig,
    origin: dict[tuple, int],
    rescore: Scorer | None = None,
) -> list[State]:
    """The best-scored (1 - eps) share of `n_out` among the programs `found` that are
    still unmeasured, plus eps fresh random ones. `rescore`: score them again with
    this model (one that learned since the exploration; their features are cached)."""
    pool = [(sc, s) for sc, s in found.scored.values() if not is_measured(s)]
    if rescore is not None and pool:
        again = np.asarray(rescore.predict([s for _, s in pool]), dtype=float)
        pool = [(float(sc), s) for sc, (_, s) in zip(again, pool)]
    ranked = [s for _, s in sorted(pool, key=lambda p: -p[0])]
    n_random = round(n_out * conf.eps_greedy)
    chosen = ranked[: n_out - n_random]
    if conf.sketch_quota:
        chosen = _with_sketch_quota(chosen, ranked, origin, found.n_sketches, conf.sketch_quota)
    taken = {s.steps for s in chosen}
    extra = [s for s in found.fresh if s.steps not in taken and not is_measured(s)]
    rng.shuffle(extra)  # type: ignore[arg-type]
    chosen += extra[: n_out - len(chosen)]
    return chosen


def _with_sketch_quota(
    chosen: list[State], ranked: list[State], origin: dict[tuple, int], n_sketches: int, quota: int
) -> list[State]:
    """`chosen` with its lowest-ranked entries replaced by the `quota` best-ranked
    programs of every sketch that has none among them (same length)."""
    present = {origin.get(s.steps) for s in chosen}
    taken = {s.steps for s in chosen}
    extra: list[State] = []
    for k in range(n_sketches):
        if k in present:
            continue
        extra += [s for s in ranked if origin.get(s.steps) == k and s.steps not in taken][:quota]
    keep = max(len(chosen) - len(extra), len(chosen) // 2)  # never more than half
    return chosen[:keep] + extra[: len(chosen) - keep]


def _next_generation(
    population: list[State],
    scores: np.ndarray,
    rng: np.random.Generator,
    conf: EvolutionConfig,
    origin: dict[tuple, int],
) -> list[State]:
    weights = scores - scores.min() + 1e-6
    probs = weights / weights.sum()
    out: dict[tuple, State] = {}
    for _ in range(conf.population * 2):
        if len(out) >= conf.population:
            break
        parent = population[int(rng.choice(len(population), p=probs))]
        child: State | None = None
        if conf.crossover_prob and rng.random() < conf.crossover_prob:
            other = population[int(rng.choice(len(population), p=probs))]
            child = crossover(parent, other, rng)
        if child is None:
            child = (
                mutate(parent, rng, conf.annotate) if rng.random() < conf.mutation_prob else parent
            )
        if child is not None:
            out.setdefault(child.steps, child)
            if parent.steps in origin:
                origin.setdefault(child.steps, origin[parent.steps])
    return list(out.values())
