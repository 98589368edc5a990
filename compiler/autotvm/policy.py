"""The AutoTVM search policy: a template's config space explored by a tuner, behind
the same `SearchPolicy` interface as the sketch search (so tuning loop, task
scheduler, measurement and records are shared).

Each proposed state carries its config in `meta_for(state)`; the tuning loop
stores it with the measurement (record settings, key "template"), and a resumed
run maps records back to config indices with `note_meta`. Configs that give an
illegal schedule count as failures without being measured; configs that give a
program already measured (or proposed in the same batch) get its cost. The
first candidate is the fallback config (`start_with_fallback`).

    >>> policy = TemplatePolicy(dag, tuner="xgb", seed=0)        # doctest: +SKIP
    >>> sched = TaskScheduler([task], [policy])                  # doctest: +SKIP
    >>> result = sched.tune(measurer, trials=256)                # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import numpy as np

from compiler.autotvm.templates import Template, get_template, template_for
from compiler.autotvm.tuners import Tuner, create_tuner
from compiler.records import MeasureRecord
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, Step
from compiler.search.policy import SearchPolicy
from compiler.te.dag import ComputeDAG

DRAWS_PER_CANDIDATE = 8  # tuner batches tried per wanted candidate before giving up


class TemplatePolicy(SearchPolicy):
    """Candidates are a template's configs, chosen by a tuner (grid, random, ga, xgb)."""

    def __init__(
        self,
        dag: ComputeDAG,
        *,
        template: Template | str | None = None,
        tuner: str | Tuner = "xgb",
        seed: int = 0,
        cores: int | None = None,
        start_with_fallback: bool = True,
        **tuner_kwargs: Any,
    ) -> None:
        super().__init__(dag, seed=seed, cores=cores)
        if template is None:
            template = template_for(dag)  # NoTemplateError when none matches
        self.template = get_template(template) if isinstance(template, str) else template
        self.space = self.template.space(dag)
        if tuner == "xgb":  # itervar features read the schedule of each config
            tuner_kwargs.setdefault("states", partial(self.template.instantiate, dag))
        self.tuner = create_tuner(tuner, self.space, seed=seed, **tuner_kwargs)
        self.configs: dict[tuple[Step, ...], list[int]] = {}  # program -> its config indices
        self.pending: set[tuple[Step, ...]] = set()  # proposed, not yet measured
        self.invalid = 0  # configs whose schedule was illegal
        # the fallback config first: tuning never ends worse than the untuned template
        self.first = [self.space.fallback().index] if start_with_fallback else []

    # --------------------------------------------------------- SearchPolicy

    def next_candidates(self, n: int) -> list[State]:
        out: list[State] = []
        for _ in range(DRAWS_PER_CANDIDATE * max(n, 1)):
            if len(out) >= n:
                break
            batch = self._seeded() or self.tuner.next_batch(n - len(out))
            if not batch:
                break
            out.extend(s for s in map(self._candidate, batch) if s is not None)
        return out

    def update(self, states: Sequence[State], costs_s: Sequence[float | None]) -> None:
        super().update(states, costs_s)
        for s, c in zip(states, costs_s):
            self.pending.discard(s.steps)
            indices = self.configs.get(s.steps, [])
            self.tuner.update(indices, [c] * len(indices))

    def meta_for(self, state: State) -> dict[str, Any]:
        """{"name", "index", "config", "features"} of the config that gave `state`."""
        indices = self.configs.get(state.steps)
        if not indices:
            return {}
        entity = self.space.get(indices[0])
        features = [round(float(x), 6) for x in entity.features()]
        return {
            "name": self.template.name,
            "index": entity.index,
            "space": self.space.signature,
            "config": entity.to_json(),
            "features": features,
        }

    def note_meta(self, state: State, meta: dict[str, Any]) -> None:
        """Map a record of this workload back to its config (before `update` with it)."""
        index = meta.get("index")
        if meta.get("name") != self.template.name or not isinstance(index, int):
            return
        if meta.get("space") != self.space.signature or not 0 <= index < len(self.space):
            return
        try:
            same = self.template.instantiate(self.dag, index).steps == state.steps
        except ScheduleError:
            same = False
        if same:
            self._remember(state.steps, index)

    # ---------------------------------------------------------- transfer

    def transfer_from(self, records: Iterable[MeasureRecord]) -> int:
        """Give the tuner the measurements of other workloads of this template (same
        knobs); returns how many it got. Records of this workload come in via resume."""
        features, costs, groups = [], [], []
        for rec in records:
            meta = rec.settings.get("template") if isinstance(rec.settings, dict) else None
            if not isinstance(meta, dict) or rec.workload_key == self.dag.workload_key:
                continue
            if meta.get("name") != self.template.name or meta.get("space") != self.space.signature:
                continue
            features.append(meta.get("features") or [])
            costs.append(rec.mean_cost_s)
            groups.append(rec.workload_key)
        width = len(self.space.get(0).features())
        kept = [k for k, f in enumerate(features) if len(f) == width]
        if kept:
            self.tuner.load_history(
                np.asarray([features[k] for k in kept]),
                [costs[k] for k in kept],
                [groups[k] for k in kept],
            )
        return len(kept)

    # ------------------------------------------------------------ helpers

    def _seeded(self) -> list[int]:
        """The fallback config, once, unless the tuner has seen it already."""
        batch = [i for i in self.first if i not in self.tuner.proposed]
        self.first = []
        self.tuner.proposed.update(batch)
        return batch

    def _candidate(self, index: int) -> State | None:
        """The state of config `index`, or None when it is illegal or not a new program."""
        try:
            state = self.template.instantiate(self.dag, index)
        except ScheduleError:
            self.invalid += 1
            self.tuner.update([index], [math.inf])
            return None
        self._remember(state.steps, index)
        if state.steps in self.measured:
            self.tuner.update([index], [self.measured[state.steps]])
            return None
        if state.steps in self.pending:
            return None  # its cost reaches this config with the pending one's
        self.pending.add(state.steps)
        return state

    def _remember(self, steps: tuple[Step, ...], index: int) -> None:
        indices = self.configs.setdefault(steps, [])
        if index not in indices:
            indices.append(index)
