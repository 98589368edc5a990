"""The evolution's population sized by time (compiler/search/budget.py)."""

import time

import numpy as np
import pytest

from compiler.ops.workloads import op_workload
from compiler.policies import create
from compiler.search.budget import SearchBudget


def test_population_is_the_ceiling_until_a_round_is_reported():
    budget = SearchBudget(share=0.2)
    assert budget.population(64, floor=128, ceiling=512) == 512
    budget.note_round(search_s=27.0, tuning_s=42.0, candidates=64, population=512)
    # a quarter of 42 s of tuning (share 0.2 of the whole) at 27/512 s a program
    assert budget.population(64, floor=128, ceiling=512) == int(0.25 * 42.0 / (27.0 / 512))
    assert budget.population(32, floor=64, ceiling=512) == int(0.25 * 21.0 / (27.0 / 512))


def test_population_stays_within_floor_and_ceiling_and_follows_the_latest_rounds():
    budget = SearchBudget(share=0.2)
    # 0.1 s a program, 10 ms a candidate: little to hide the search in
    budget.note_round(search_s=10.0, tuning_s=0.64, candidates=64, population=100)
    assert budget.population(64, floor=128, ceiling=512) == 128
    # 100 s a candidate now (running mean ~50 s): the search is all but free
    budget.note_round(search_s=10.0, tuning_s=6400.0, candidates=64, population=100)
    assert budget.population(64, floor=128, ceiling=512) == 512
    assert budget.tuning_s_per_candidate == pytest.approx(0.5 * 0.01 + 0.5 * 100.0)


def test_a_round_that_waited_for_no_search_leaves_the_search_cost_unknown():
    budget = SearchBudget(share=0.2)
    budget.note_round(search_s=0.0, tuning_s=1.0, candidates=64, population=512)
    assert budget.search_s_per_program is None
    assert budget.population(64, floor=128, ceiling=512) == 512


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


def _round(policy, model, tuning_s, n=64):
    """One round as the tuning loop runs it, building and timing taking `tuning_s`;
    returns the population the round's search evolved (its first scored batch)."""
    model.batches.clear()
    start = time.perf_counter()
    cands = policy.next_candidates(n)
    search_s = time.perf_counter() - start
    policy.note_round(search_s=search_s, tuning_s=tuning_s, candidates=len(cands))
    policy.update(cands, [1e-3 * (i + 1) for i in range(len(cands))])
    return model.batches[0]


def test_sketch_policy_shrinks_its_population_when_the_search_outweighs_tuning():
    dag = op_workload("matmul", "64,64,64")
    model = SlowScriptedModel()
    policy = create("sketch", dag, model=model, seed=1, population=512)
    # nothing reported yet: the ceiling; 1 ms a candidate against >= 4 ms a program
    assert _round(policy, model, tuning_s=0.064) == 512
    assert _round(policy, model, tuning_s=6400.0) == policy.conf.min_population
    # building and timing now dwarf the search (running mean: 50 s a candidate)
    assert _round(policy, model, tuning_s=6400.0) == 512


def test_a_fixed_population_ignores_the_timings():
    dag = op_workload("matmul", "64,64,64")
    model = SlowScriptedModel()
    policy = create("sketch", dag, model=model, seed=1, population=256, search_share=None)
    assert _round(policy, model, tuning_s=0.064) == 256
    assert _round(policy, model, tuning_s=0.064) == 256
