"""Tuners and the template policy on synthetic costs (no LLVM): no config twice, the
budget respected, GA and XGBoost beating random search, transfer learning, and the
policy's bookkeeping (fallback first, duplicates, resume from records, sketch fallback)."""

import math

import numpy as np
import pytest

from compiler import ops, te
from compiler.autotvm import ConfigSpace, NoTemplateError, TemplatePolicy, create_tuner, run_tuner
from compiler.measure import MeasureInput, MeasureResult
from compiler.measure.measurer import to_record
from compiler.ops.workloads import op_workload
from compiler.policies import create, policy_for_task
from compiler.records import SQLiteStore, TargetInfo
from compiler.search.policy import SketchPolicy
from compiler.search.scorers import RandomScorer
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler
from compiler.te.dag import ComputeDAG

KINDS = ["grid", "random", "ga", "xgb"]


def tune_task(task, policy, measurer, *, trials, per_round):
    """tune-op's loop: a task scheduler of one task."""
    return TaskScheduler([task], [policy], per_round=per_round).tune(measurer, trials)


def small_space():
    cfg = ConfigSpace()
    cfg.define_split("tile", 24, num_outputs=3)  # 30 splits
    cfg.define_knob("unroll", [0, 16, 64, 512])
    cfg.define_annotate("ann", ["i", "j"], "try_unroll")
    return cfg  # 480 configs


def synthetic_space():
    cfg = ConfigSpace()
    cfg.define_split("tile_i", 256, num_outputs=3)
    cfg.define_split("tile_j", 64, num_outputs=2)
    cfg.define_knob("unroll", [0, 16, 64, 512])
    cfg.define_reorder("order", ["a", "b", "c"], "all")
    cfg.define_annotate("ann", ["x", "y"], "try_unroll_vec")
    return cfg  # 45360 configs, two optima


def synthetic_cost(cfg, shift=0.0):
    """A smooth bowl in log2 of the tile sizes plus per-knob penalties: what a real
    schedule space looks like to a model (the best configs are few)."""

    def cost(indices):
        out = []
        for i in indices:
            e = cfg.get(i)
            ti, tj = e["tile_i"].size, e["tile_j"].size
            c = 1.0 + 0.3 * (math.log2(ti[1]) - 3 - shift) ** 2 + 0.3 * (math.log2(ti[2]) - 2) ** 2
            c += 0.4 * (math.log2(tj[1]) - 4) ** 2
            c += {0: 0.5, 16: 0.2, 64: 0.0, 512: 0.4}[e["unroll"].val]
            c += 0.3 * e["order"].perm.index(2)
            c += 0.0 if e["ann"].anns == ("unroll", "vec") else 0.5
            out.append(c)
        return out

    return cost


@pytest.mark.parametrize("kind", KINDS)
def test_no_config_twice_and_the_budget_is_respected(kind):
    cfg = small_space()
    cost = lambda idx: [float(i % 37 + 1) for i in idx]
    tuner = create_tuner(kind, cfg, seed=1)
    history = run_tuner(tuner, cost, trials=100, batch_size=24)
    indices = [i for i, _ in history]
    assert len(indices) == 100 == len(set(indices))
    assert all(0 <= i < len(cfg) for i in indices)
    rest = run_tuner(tuner, cost, trials=10_000, batch_size=64)  # spends the space
    everything = indices + [i for i, _ in rest]
    assert sorted(everything) == list(range(len(cfg)))
    assert tuner.next_batch(8) == [] and not tuner.has_next()


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_never_exceeds_its_size_and_known_configs_are_skipped(kind):
    cfg = small_space()
    tuner = create_tuner(kind, cfg, seed=0)
    known = list(range(0, len(cfg), 3))  # e.g. resumed from records
    tuner.update(known, [1.0] * len(known))
    proposed = []
    for n in (1, 5, 17, 64, 200):
        batch = tuner.next_batch(n)
        assert len(batch) <= n
        proposed += batch
        tuner.update(batch, [None] * len(batch))  # failures are learned too
    assert not set(proposed) & set(known) and len(proposed) == len(set(proposed))


def mean_best(kind, budget, seeds=range(5)):
    """Mean over seeds of (best cost found, trials to reach the optimum or 2 x budget)."""
    cfg = synthetic_space()
    cost = synthetic_cost(cfg)
    best, hits = [], []
    for seed in seeds:
        history = run_tuner(create_tuner(kind, cfg, seed=seed), cost, budget, batch_size=16)
        costs = [c for _, c in history]
        best.append(min(costs))
        hits.append(next((k + 1 for k, c in enumerate(costs) if c <= 1.0 + 1e-9), 2 * budget))
    return float(np.mean(best)), float(np.mean(hits))


def test_ga_and_xgb_find_the_optimum_faster_than_random():
    random_best, random_hits = mean_best("random", 320)
    ga_best, ga_hits = mean_best("ga", 320)
    xgb_best, xgb_hits = mean_best("xgb", 320)
    assert ga_best < random_best and ga_hits <= random_hits
    assert xgb_best < ga_best and xgb_hits < random_hits
    assert xgb_best == pytest.approx(1.0)  # the optimum, on every seed


def test_xgb_transfer_learning_plans_from_another_workloads_records():
    cfg = synthetic_space()
    other = synthetic_cost(cfg, shift=0.5)  # a similar workload: optimum moved a little
    rng = np.random.default_rng(3)
    seen = [int(i) for i in rng.choice(len(cfg), 400, replace=False)]
    cold = create_tuner("xgb", cfg, seed=0)
    warm = create_tuner("xgb", cfg, seed=0)
    warm.load_history(cfg.features(seen), other(seen), ["other"] * len(seen))
    cost = synthetic_cost(cfg)
    assert not cold.plan and warm.plan  # the warm tuner plans before measuring anything
    first_cold = np.mean(cost(cold.next_batch(48)))
    first_warm = np.mean(cost(warm.next_batch(48)))
    assert first_warm < first_cold - 0.5


# ------------------------------------------------------------ template policy


def matmul_dag(m=16, n=32, k=8):
    a, b = te.placeholder((m, k), name="A"), te.placeholder((k, n), name="B")
    return ComputeDAG([ops.relu(ops.matmul(a, b))])


class ScriptedMeasurer:
    """Costs from the config (smaller register tiles are slower), recorded in a store."""

    def __init__(self, store=None):
        from compiler.measure import MeasureStats

        self.store, self.stats, self.calls = store, MeasureStats(), 0
        self.target = TargetInfo("test-target", "cpu", "", 1)

    def measure(self, inputs, on_run_start=None):
        if on_run_start is not None:  # as the real one: after building, before timing
            on_run_start()
        out = []
        for inp in inputs:
            self.calls += 1
            cost = 1e-3 / (1 + len(inp.state.steps)) + 1e-6 * (hash(inp.state.steps) % 97)
            result = MeasureResult((cost,))
            if self.store is not None:
                self.store.add([to_record(inp, result, self.target)])
            out.append((inp, result))
        return out


def test_template_policy_starts_with_the_fallback_and_never_repeats_a_program():
    dag = matmul_dag()
    policy = TemplatePolicy(dag, tuner="random", seed=0)
    first = policy.next_candidates(8)
    fallback = policy.template.fallback_state(dag)
    assert first[0].steps == fallback.steps
    assert policy.meta_for(first[0])["index"] == policy.space.fallback().index
    task = SearchTask("mm", dag)
    tune_task(task, policy, ScriptedMeasurer(), trials=60, per_round=16)
    programs = list(policy.measured)
    assert len(programs) == len(set(programs)) >= 60
    meta = policy.meta_for(policy.states[programs[5]])
    assert meta["name"] == "matmul" and policy.space.get(meta["index"]).to_json() == meta["config"]


def test_template_policy_resumes_config_indices_from_records(tmp_path):
    dag = matmul_dag()
    task = SearchTask("mm", dag)
    with SQLiteStore(tmp_path / "r.db") as store:
        measurer = ScriptedMeasurer(store)
        first = TemplatePolicy(dag, tuner="xgb", seed=0)
        tune_task(task, first, measurer, trials=40, per_round=20)
        measured = set(first.tuner.costs)
        again = TemplatePolicy(dag, tuner="xgb", seed=0)
        assert TaskScheduler([task], [again]).resume(store, measurer.target.target) == 40
        assert set(again.tuner.costs) >= measured  # every record mapped back to its config
        fresh = again.next_candidates(30)
        assert fresh and not any(again.is_measured(s) for s in fresh)
        assert not {again.meta_for(s)["index"] for s in fresh} & measured
        records = list(store.records())
    assert all(r.settings["template"]["name"] == "matmul" for r in records)


def test_template_policy_transfer_from_records_of_another_shape(tmp_path):
    small, big = (
        SearchTask("mm16", matmul_dag(16, 32, 8)),
        SearchTask("mm32", matmul_dag(32, 32, 8)),
    )
    with SQLiteStore(tmp_path / "r.db") as store:
        tune_task(small, TemplatePolicy(small.dag, tuner="random"), ScriptedMeasurer(store),
                  trials=30, per_round=30)  # fmt: skip
        policy = TemplatePolicy(big.dag, tuner="xgb")
        assert policy.transfer_from(store.records()) == 30
        assert policy.transfer_from([]) == 0
    assert policy.tuner.plan  # the model plans from the other shape's records


def test_create_template_raises_no_template_error_for_softmax():
    dag = op_workload("softmax", "4,100")
    with pytest.raises(NoTemplateError, match="no template for op softmax"):
        create("template", dag, tuner="xgb")
    assert issubclass(NoTemplateError, ValueError)


def test_policy_for_task_falls_back_to_sketch_and_says_so_once():
    messages = []
    policy = policy_for_task(
        "template", op_workload("softmax", "4,100"), model=RandomScorer(), tuner="ga",
        warn=messages.append, name="task3",
    )  # fmt: skip
    assert isinstance(policy, SketchPolicy)
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "task3" in messages[0] and "softmax" in messages[0] and "sketch" in messages[0]
    quiet = []
    policy = policy_for_task("template", matmul_dag(), model=None, warn=quiet.append)
    assert isinstance(policy, TemplatePolicy) and not quiet


def test_measure_input_meta_is_optional_and_lands_in_the_record_settings():
    task = SearchTask("mm", matmul_dag())
    state = TemplatePolicy(task.dag).template.fallback_state(task.dag)
    target = TargetInfo("t", "cpu", "", 1)
    plain = to_record(MeasureInput(task, state), MeasureResult((1.0,), settings={"a": 1}), target)
    tagged = to_record(
        MeasureInput(task, state, {"name": "matmul"}),
        MeasureResult((1.0,), settings={"a": 1}),
        target,
    )
    assert plain.settings == {"a": 1}
    assert tagged.settings == {"a": 1, "template": {"name": "matmul"}}
