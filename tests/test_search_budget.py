"""The evolution's population sized by time (compiler/search/budget.py)."""

import time

import numpy as np
import pytest

from compiler.ops.workloads import op_workload
from compiler.search.budget import SearchBudget
from compiler.search.policy import create


def test_population_is_the_ceiling_until_both_costs_are_known():
    budget = SearchBudget(share=0.2)
    assert budget.population(64, floor=128, ceiling=512) == 512
    budget.note_search(seconds=30.0, population=512)
    assert budget.population(64, floor=128, ceiling=512) == 512
    budget.note_tuning(seconds=42.0, candidates=64)
    # a quarter of 42 s of tuning (share 0.2 of the whole) at 30/512 s a program
    assert budget.population(64, floor=128, ceiling=512) == int(0.25 * 42.0 / (30.0 / 512))


def test_population_stays_within_floor_and_ceiling_and_follows_the_latest_costs():
    budget = SearchBudget(share=0.2)
    budget.note_search(seconds=10.0, population=100)  # 0.1 s a program
    budget.note_tuning(seconds=0.64, candidates=64)  # 10 ms a candidate: little to hide in
    assert budget.population(64, floor=128, ceiling=512) == 128
    budget.note_tuning(seconds=6400.0, candidates=64)  # 100 s a candidate (mean: ~50 s)
    assert budget.population(64, floor=128, ceiling=512) == 512
    assert budget.tuning_s_per_candidate == pytest.approx(0.5 * 0.01 + 0.5 * 100.0)


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1, 1.5])
def test_share_outside_zero_to_one_is_rejected(share):
    with pytest.raises(ValueError, match=f"search share must be in \\(0, 1\\), got {share}"):
        SearchBudget(share)


class SlowScriptedModel:
    """Prefers vectorized programs (no learning), at 1 ms a program scored; keeps
    the size of every batch it scored."""

    def __init__(self):
        self.batches: list[int] = []

    def predict(self, states):
        self.batches.append(len(states))
        time.sleep(1e-3 * len(states))
        return np.array([sum("VECTORIZE" in repr(st) for st in s.steps) for s in states], float)

    def update(self, states, costs):
        pass


def _first_generation(policy, model, n=64):
    """The population the policy's next round evolved (its first scored batch)."""
    model.batches.clear()
    cands = policy.next_candidates(n)
    policy.update(cands, [1e-3 * (i + 1) for i in range(len(cands))])
    return model.batches[0]


def test_sketch_policy_shrinks_its_population_when_scoring_outweighs_tuning():
    dag = op_workload("matmul", "64,64,64")
    model = SlowScriptedModel()
    policy = create("sketch", dag, model=model, seed=1, population=512)
    assert _first_generation(policy, model) == 512  # nothing timed yet: the ceiling
    policy.note_tuning_time(0.064, 64)  # 1 ms a candidate against >= 4 ms a program
    assert _first_generation(policy, model) == policy.conf.min_population
    policy.note_tuning_time(6400.0, 64)  # building and timing now dwarf the search
    assert _first_generation(policy, model) == 512


def test_a_fixed_population_ignores_the_timings():
    dag = op_workload("matmul", "64,64,64")
    model = SlowScriptedModel()
    policy = create("sketch", dag, model=model, seed=1, population=256, search_share=None)
    assert _first_generation(policy, model) == 256
    policy.note_tuning_time(0.064, 64)
    assert _first_generation(policy, model) == 256
