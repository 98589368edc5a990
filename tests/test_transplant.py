"""Moving a program's tile sizes into another sketch (compiler/search/transplant.py)."""

import numpy as np
import pytest
from test_search import DAGS, ScriptedModel, conv_nchwc_bias_relu, matmul, run_and_compare

from compiler.ops.workloads import op_workload
from compiler.policies import create
from compiler.schedule.state import State
from compiler.schedule.steps import CacheWrite, Pragma
from compiler.search.annotate import AnnotateConfig, sample_population
from compiler.search.sketch import generate_sketches
from compiler.search.transplant import (
    compatible,
    hole_indices,
    hole_signature,
    sketch_index,
    transplant,
)


def tiles(state: State, sketch: State) -> list[tuple[int, ...]]:
    return [state.steps[i].factors for i in hole_indices(sketch)]


@pytest.mark.parametrize("name", sorted(DAGS))
def test_transplants_keep_the_tile_sizes_belong_to_the_target_sketch_and_match_numpy(name):
    dag = DAGS[name]()
    rng = np.random.default_rng(5)
    cfg = AnnotateConfig(cores=2)
    sketches = generate_sketches(dag, cores=2)
    moved = []
    for k, others in enumerate(compatible(sketches)):
        for program in sample_population([sketches[k]], 2, rng, cfg):
            assert sketch_index(program, sketches) == k
            for j in others:
                out = transplant(program, sketches[k], sketches[j], cfg)
                assert out is not None and out.is_complete
                assert sketch_index(out, sketches) == j
                assert tiles(out, sketches[j]) == tiles(program, sketches[k])
                moved.append(out)
    assert moved  # tiled ops: plain, cache-write, fused, packed tiling; the rfactor variants
    picks = rng.choice(len(moved), size=min(len(moved), 12), replace=False)
    run_and_compare(dag, [moved[i] for i in picks], rng)


def test_every_tiled_sketch_of_a_blocked_conv_shares_its_holes():
    sketches = generate_sketches(conv_nchwc_bias_relu(), cores=2)
    signatures = {hole_signature(s) for s in sketches}
    assert len(signatures) == 1
    assert all(
        sorted(c + [k]) == list(range(len(sketches))) for k, c in enumerate(compatible(sketches))
    )
    names = [name for name, _, _ in next(iter(signatures))]
    assert names == ["rx", "ry", "rc", "fi", "x", "y", "fo", "n"]  # split right to left


def test_a_transplant_keeps_the_unroll_and_the_padding_location():
    dag = op_workload("conv2d_nchwc", "1,8,9,9,16,3,3,1,1")
    sketches = generate_sketches(dag, cores=2)
    rng = np.random.default_rng(0)
    cfg = AnnotateConfig(cores=2)
    cache_write = next(k for k, s in enumerate(sketches) if isinstance(s.steps[0], CacheWrite))
    direct = next(j for j in compatible(sketches)[cache_write] if j < cache_write)
    pad = sketches[0].stage_index("pad")

    def pad_loop(s: State) -> str | None:
        st = s.stages[pad]
        return (
            s.stages[st.attach_target].iter_by_uid(st.attach_iter).name
            if st.attach_iter >= 0
            else None
        )

    for program in sample_population([sketches[cache_write]], 40, rng, cfg):
        unroll = [st.value for st in program.steps if isinstance(st, Pragma)]
        if pad_loop(program) and unroll:
            break
    else:
        pytest.fail("no sampled program computes the padding inside the conv and unrolls")
    out = transplant(program, sketches[cache_write], sketches[direct], cfg)
    assert out is not None
    assert [st.value for st in out.steps if isinstance(st, Pragma)] == unroll
    assert pad_loop(out) == pad_loop(program)
    run_and_compare(dag, [program, out], rng)


def test_the_policy_measures_the_best_programs_transplants_once():
    dag = matmul(16, 16, 16)
    policy = create("sketch", dag, model=ScriptedModel(), seed=4, population=64)
    sketches = policy.sketches
    first = sample_population([sketches[0]], 4, np.random.default_rng(1), policy.conf.annotate)
    policy.update(first, [1e-3, 2e-3, 3e-3, 4e-3])
    others = compatible(sketches)[0]
    assert len(others) == len(sketches) - 1  # matmul: every sketch tiles the same way
    cands = policy.next_candidates(4 * len(others))
    moved = cands[: len(others)]  # first in the round, in sketch order
    assert [policy._origin[s.steps] for s in moved] == others
    assert all(tiles(s, sketches[j]) == tiles(first[0], sketches[0]) for s, j in zip(moved, others))
    policy.update(cands, [5e-3] * len(cands))  # none better: the best stays first[0]
    again = policy.next_candidates(4 * len(others))
    assert not {s.steps for s in again} & {s.steps for s in cands}  # no transplant twice
    assert not {s.steps for s in again} & {s.steps for s in first}


def test_without_transplants_the_round_follows_the_model_only():
    dag = matmul(16, 16, 16)
    policy = create("sketch", dag, model=ScriptedModel(), seed=4, population=64, transplants=False)
    first = sample_population(
        [policy.sketches[0]], 4, np.random.default_rng(1), policy.conf.annotate
    )
    policy.update(first, [1e-3, 2e-3, 3e-3, 4e-3])
    assert policy._transplants(8, set()) == []
