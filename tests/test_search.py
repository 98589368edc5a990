"""Sketch generation, random annotation, mutation and the search policies."""

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.policies import create
from compiler.runtime import load
from compiler.schedule.stage import Attach
from compiler.schedule.state import State
from compiler.schedule.steps import (
    CacheWrite,
    ComputeAt,
    FollowSplit,
    PackLayout,
    Reorder,
    Rfactor,
    Split,
)
from compiler.search.annotate import AnnotateConfig, factorizations, sample_population
from compiler.search.mutate import MUTATIONS, crossover, mutate
from compiler.search.sketch import RULES, Cond, SketchRule, generate_sketches, register_rule
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate


def matmul(m=24, n=40, k=36):
    a, b = te.placeholder((m, k), name="A"), te.placeholder((k, n), name="B")
    return ComputeDAG([ops.matmul(a, b)])


def matmul_bias_relu(m=24, n=40, k=36):
    a, b = te.placeholder((m, k), name="A"), te.placeholder((k, n), name="B")
    bias = te.placeholder((n,), name="bias")
    return ComputeDAG([ops.relu(ops.add(ops.matmul(a, b), bias))])


def conv_relu():
    x, w = te.placeholder((1, 8, 10, 10), name="x"), te.placeholder((12, 8, 3, 3), name="w")
    return ComputeDAG([ops.relu(ops.conv2d_nchw(x, w, padding=1))])


def softmax():
    return ComputeDAG([ops.softmax(te.placeholder((4, 100), name="x"))])


def reduction():
    return ComputeDAG([ops.reduce_sum(te.placeholder((2, 300), name="x"), axes=(1,))])


def dense_out_in(batch=1, inp=96, out=40):
    """Dense with the weight laid out [OUT, IN] (ONNX Gemm transB, not folded)."""
    x, w = te.placeholder((batch, inp), name="X"), te.placeholder((out, inp), name="W")
    return ComputeDAG([ops.dense(x, w)])


def conv_nchwc_bias_relu(filters=24):
    """A conv as networks run it: the weight in blocks of 16 filters (the last block
    zero-padded here), read back as NCHW by its epilogue."""
    x = te.placeholder((1, 8, 9, 9), name="x")
    w = te.placeholder((2, 8, 3, 3, 16), name="w")
    bias = te.placeholder((filters,), name="bias")
    conv = ops.conv2d_nchwc(x, w, padding=1, filters=filters)
    return ComputeDAG([ops.relu(ops.bias_add(conv, bias))])


DAGS = {
    "matmul": matmul,
    "conv_nchwc_bias_relu": conv_nchwc_bias_relu,
    "dense_out_in": dense_out_in,
    "matmul_bias_relu": matmul_bias_relu,
    "conv_relu": conv_relu,
    "softmax": softmax,
    "reduction": reduction,
}


def count(steps, kind):
    return sum(isinstance(s, kind) for s in steps)


def test_matmul_sketches_plain_tiling_and_cache_write_at_two_levels():
    sketches = generate_sketches(matmul(), cores=2)
    # (plain SSRSRS, cache write fused at level 1, at level 2) x (B as is, B packed)
    assert len(sketches) == 6
    unpacked = [s for s in sketches if count(s.steps, PackLayout) == 0]
    packed = [s for s in sketches if count(s.steps, PackLayout) == 1]
    assert len(unpacked) == len(packed) == 3
    plain, level1, level2 = unpacked
    # SSRSRS: two spatial loops in 4 parts, one reduction in 2 -> 10 loops
    assert count(plain.steps, CacheWrite) == 0 and len(plain.stages[2].iters) == 10
    assert [type(s) for s in plain.steps] == [Split, Split, Split, Reorder]
    for sketch, level in ((level1, 1), (level2, 2)):
        assert count(sketch.steps, CacheWrite) == 1
        local, copy = sketch.stages[2], sketch.stages[3]
        assert local.attach is Attach.AT and local.attach_target == 3
        assert len(copy.iters) == 2 * (level + 1)
        assert copy.iters.index(copy.iter_by_uid(local.attach_iter)) == 2 * level - 1
    for sketch in packed:
        names = [st.name for st in sketch.stages]
        assert "B.packed" in names and names.index("B.packed") < names.index("matmul")
    assert all(not s.is_complete for s in sketches)


def test_matmul_bias_relu_sketches_fuse_the_epilogue_at_levels_one_and_two():
    sketches = generate_sketches(matmul_bias_relu(), cores=2)
    assert len(sketches) == 4  # levels 1 and 2, each with B as is or packed
    for sketch in sketches:
        assert count(sketch.steps, CacheWrite) == 0
        assert count(sketch.steps, FollowSplit) == 2 and count(sketch.steps, ComputeAt) == 1
        add = next(s for s in sketch.stages if s.name == "add")
        assert add.attach is Attach.INLINE


def test_conv_relu_sketches_keep_padding_for_annotation():
    sketches = generate_sketches(conv_relu(), cores=2)
    assert len(sketches) == 2
    pad = sketches[0].stages[1]
    assert pad.name == "pad" and pad.attach is Attach.ROOT
    conv = next(s for s in sketches[0].stages if s.name == "conv2d")
    assert len(conv.iters) == 4 * 4 + 3 * 2


def test_a_blocked_conv_is_also_tiled_into_the_stage_reading_it_back_as_nchw():
    def stage(sketch, name):
        return next(i for i, st in enumerate(sketch.stages) if st.name == name)

    sketches = generate_sketches(conv_nchwc_bias_relu(), cores=2)
    fused = []
    for sketch in sketches:  # the re-indexing and the bias are inlined into the relu
        for name in ("unpack_nchwc", "bias_add"):
            assert sketch.stages[stage(sketch, name)].attach is Attach.INLINE
        conv = sketch.stages[stage(sketch, "conv2d_nchwc")]
        if conv.attach is Attach.AT and conv.attach_target == stage(sketch, "relu"):
            fused.append(sketch)
    assert len(fused) == 2 and len(sketches) == 8  # levels 1 and 2 beside the six others
    for level, sketch in enumerate(fused, start=1):
        relu, conv = sketch.stages[-1], sketch.stages[stage(sketch, "conv2d_nchwc")]
        # per level: n, F's block index, y, x; then the tile: those four and the block
        assert len(relu.iters) == 4 * (level + 1) + 1
        assert relu.iters.index(relu.iter_by_uid(conv.attach_iter)) == 4 * level - 1
        assert relu.iters[4 * level + 2].extent == 16


def test_reductions_branch_into_rfactor_variants():
    assert len(generate_sketches(reduction(), cores=2)) == 3
    sketches = generate_sketches(softmax(), cores=2)
    assert len(sketches) == 9  # each of the two reductions: none, outer or inner rfactor
    assert sum(count(s.steps, Rfactor) for s in sketches) == 12


def test_rfactor_puts_the_factored_axis_innermost():
    factored = [s for s in generate_sketches(reduction(), cores=2) if count(s.steps, Rfactor)]
    assert len(factored) == 2  # the outer or the inner part of the reduction
    for sketch in factored:
        rf = next(st for st in sketch.stages if st.name.endswith(".rf"))
        assert rf.iters[-1].type.name == "SPATIAL" and rf.iters[-2].type.name == "REDUCE"


def test_gemv_like_dense_also_gets_rfactor_sketches_and_matmul_does_not():
    # W [OUT, IN] at batch 1: vectorizing OUT reads W with a stride of IN floats
    gemv = generate_sketches(dense_out_in(), cores=2)
    with_rf = [s for s in gemv if count(s.steps, Rfactor)]
    assert len(gemv) == 10 and len(with_rf) == 4  # the six tiled sketches stay
    # enough rows to reuse W, or W [IN, OUT] read along OUT: tiling alone
    for dag in (dense_out_in(batch=16), matmul(1, 40, 96), matmul(), conv_relu()):
        assert not any(count(s.steps, Rfactor) for s in generate_sketches(dag, cores=2))


def test_gemv_rfactor_programs_vectorize_along_the_weight_rows_and_match_numpy():
    dag = dense_out_in()
    rf_sketches = [s for s in generate_sketches(dag, cores=2) if count(s.steps, Rfactor)]
    rng = np.random.default_rng(3)
    pop = sample_population(rf_sketches, 24, rng, AnnotateConfig(cores=2))
    vectorized = [
        s for s in pop
        if any(it.annotation.name == "VECTORIZE" for st in s.stages if st.name.endswith(".rf")
               for it in st.iters)
    ]  # fmt: skip
    assert vectorized
    run_and_compare(dag, vectorized[:6], rng)


def test_user_rule_is_applied_by_the_generic_derivation_loop():
    seen = []

    def cond(ctx, state, k):
        seen.append(state.stages[k].name)
        return Cond.SKIP

    register_rule(SketchRule("spy", cond, lambda ctx, s, k: []), before="always_inline")
    try:
        generate_sketches(matmul(), cores=2)
    finally:
        RULES[:] = [r for r in RULES if r.name != "spy"]
    assert "matmul" in seen


def test_factorizations_are_exact_and_respect_the_innermost_cap():
    for f in factorizations(1024, 4, 64):
        assert np.prod(f) == 1024 and f[-1] <= 64
    assert len(factorizations(12, 2, 64)) == 6


def run_and_compare(dag, states, rng):
    args = [rng.standard_normal(p.shape).astype("f") for p in dag.placeholders]
    want = evaluate(dag.outputs, dict(zip(dag.placeholders, args)))[0]
    for s in states:
        out = np.full(want.shape, np.nan, "f")
        load(build(lower(s)))(*args, out)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4, err_msg=str(s.steps))


@pytest.mark.parametrize("name", sorted(DAGS))
def test_sampled_and_mutated_states_compile_and_match_numpy(name):
    dag = DAGS[name]()
    rng = np.random.default_rng(7)
    cfg = AnnotateConfig(cores=2, vector_cap=32)
    pop = sample_population(generate_sketches(dag, cores=2), 6, rng, cfg)
    assert pop and all(s.is_complete for s in pop)
    mutated = [m for m in (mutate(s, rng, cfg) for s in pop) if m is not None]
    run_and_compare(dag, pop + mutated, rng)


@pytest.mark.parametrize("name", sorted(DAGS))
def test_crossover_children_take_each_stage_tiles_from_a_parent_and_match_numpy(name):
    dag = DAGS[name]()
    rng = np.random.default_rng(11)
    cfg = AnnotateConfig(cores=2)
    sketches = generate_sketches(dag, cores=2)
    children = []
    for sketch in sketches[:3]:
        a, b = sample_population([sketch], 2, rng, cfg)[:2]
        child = next((c for c in (crossover(a, b, rng) for _ in range(8)) if c), None)
        if child is None:
            continue
        assert len(child.steps) == len(a.steps) and child.steps != a.steps
        b_splits = [st for st in b.steps if isinstance(st, Split)]
        for sc, sa in zip(child.steps, a.steps):
            if isinstance(sc, Split):
                assert sc == sa or sc in b_splits  # tiles from one parent or the other
            else:
                assert sc == sa  # everything else from the first parent
        children.append(child)
    assert children
    run_and_compare(dag, children, rng)


def test_every_mutation_kind_produces_legal_programs():
    dag = conv_relu()
    rng = np.random.default_rng(3)
    cfg = AnnotateConfig(cores=2)
    pop = sample_population(generate_sketches(dag, cores=2), 20, rng, cfg)
    for fn, _ in MUTATIONS:
        outs = [m for m in (fn(s, rng, cfg) for s in pop) if m is not None]
        for m in outs:
            assert State.replay(dag, m.steps).steps == m.steps


class ScriptedModel:
    """A stand-in score: prefers programs with more vectorized work (no learning)."""

    def predict(self, states):
        return np.array(
            [sum(1 for st in s.steps if "VECTORIZE" in repr(st)) for s in states], float
        )

    def update(self, states, costs):
        self.updates = getattr(self, "updates", 0) + len(states)


@pytest.mark.parametrize("kind", ["sketch", "random"])
def test_policies_never_propose_a_measured_candidate_twice(kind):
    dag = matmul(16, 16, 16)
    policy = create(kind, dag, model=ScriptedModel(), seed=1, population=64)
    seen = set()
    for _ in range(3):
        cands = policy.next_candidates(8)
        assert cands and len({c.steps for c in cands}) == len(cands)
        assert not seen & {c.steps for c in cands}
        seen |= {c.steps for c in cands}
        policy.update(cands, [1e-3 * (i + 1) for i in range(len(cands))])
    assert policy.best_cost_s == pytest.approx(1e-3)


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="unknown search policy 'grid'"):
        create("grid", matmul())


class OneSketchModel:
    """Scores every program of the first sketch above every other program."""

    def predict(self, states):
        return np.array([10.0 + len(s.steps) if self.is_first(s) else 0.0 for s in states])

    def is_first(self, s):
        return not any(isinstance(st, (CacheWrite, PackLayout)) for st in s.steps)

    def update(self, states, costs):
        pass


@pytest.mark.parametrize("quota", [0, 1])
def test_sketch_quota_measures_the_best_of_every_absent_sketch(quota):
    dag = matmul(16, 16, 16)
    sketches = generate_sketches(dag, cores=2)
    assert len(sketches) == 6 and OneSketchModel().is_first(sketches[0])
    assert not any(OneSketchModel().is_first(s) for s in sketches[1:])
    model = OneSketchModel()
    policy = create("sketch", dag, model=model, seed=2, population=128, sketch_quota=quota)
    policy.conf.eps_greedy = 0.0
    cands = policy.next_candidates(16)
    assert len(cands) == 16
    origins = [policy._origin[c.steps] for c in cands]
    if quota == 0:  # the model's favourite sketch takes every slot
        assert set(origins) == {0}
    else:  # one slot each for the five other sketches, in place of the lowest-ranked
        assert origins[:11] == [0] * 11 and sorted(origins[11:]) == [1, 2, 3, 4, 5]


class UntrainedOneSketchModel(OneSketchModel):
    """OneSketchModel until its first update; untrained before it."""

    is_trained = False

    def update(self, states, costs):
        self.is_trained = True


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_untrained_round_measures_a_share_as_drawn_then_follows_the_model(share):
    dag = matmul(16, 16, 16)
    model = UntrainedOneSketchModel()
    policy = create(
        "sketch",
        dag,
        model=model,
        seed=3,
        population=128,
        untrained_as_drawn=share,
        transplants=False,  # the best's tile sizes in other sketches: tests/test_transplant.py
    )
    policy.conf.eps_greedy = 0.0
    cands = policy.next_candidates(16)
    assert len({c.steps for c in cands}) == 16
    origins = [policy._origin[c.steps] for c in cands]
    if share == 0.0:  # all 16 follow the (untrained) model
        assert set(origins) == {0}
    else:  # the first 8 as drawn, uniformly over the six sketches; then the model's choice
        assert len(set(origins[:8])) > 1 and set(origins[8:]) == {0}
    policy.update(cands, [1e-3] * 16)
    again = policy.next_candidates(16)  # trained now: nothing more as drawn
    assert {policy._origin[c.steps] for c in again} == {0}
    assert not {c.steps for c in again} & {c.steps for c in cands}
