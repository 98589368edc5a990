"""Templates: which DAGs each one matches, and that its configs compile with LLVM and
compute what numpy computes (a sample by default, every distinct program of a small
space with -m slow); a user's own template; `tune-op --policy template` end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest

from compiler import ops, te
from compiler.autotvm import NoTemplateError, Sched, match_template, register_template
from compiler.autotvm.templates import TEMPLATES, find_anchor, template_for
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops.tags import REDUCE
from compiler.records import create as create_store
from compiler.runtime import empty, load, num_threads
from compiler.schedule.state import State
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate


def ph(shape, name):
    return te.placeholder(shape, name=name)


def matmul_bias_relu():
    bias = ph((20,), "bias")
    return ComputeDAG([ops.relu(ops.add(ops.matmul(ph((12, 18), "A"), ph((18, 20), "B")), bias))])


def conv_bias_relu():
    y = ops.conv2d_nchw(ph((1, 6, 9, 9), "x"), ph((10, 6, 3, 3), "w"), padding=1)
    return ComputeDAG([ops.relu(ops.bias_add(y, ph((10,), "b")))])


def nchwc_bias_relu():
    y = ops.conv2d_nchwc(ph((1, 6, 9, 9), "x"), ph((2, 6, 3, 3, 16), "wp"), 1, 1, filters=20)
    return ComputeDAG([ops.relu(ops.bias_add(y, ph((20,), "b")))])


def blocked_conv_add_relu():
    y = ops.conv2d_blocked(ph((1, 2, 9, 9, 16), "x"), ph((3, 2, 3, 3, 16, 16), "w"), 1, 1)
    return ComputeDAG([ops.relu(ops.add(y, ph((1, 3, 1, 1, 16), "b")))])


DAGS = {  # name -> (DAG builder, the template that must match)
    "matmul": (lambda: ComputeDAG([ops.matmul(ph((12, 18), "A"), ph((18, 20), "B"))]), "matmul"),
    "matmul_bias_relu": (matmul_bias_relu, "matmul"),
    "dense_batch1": (
        lambda: ComputeDAG([ops.dense(ph((1, 24), "X"), ph((40, 24), "W"), ph((40,), "b"))]),
        "matmul",
    ),
    "batch_matmul": (
        lambda: ComputeDAG([ops.batch_matmul(ph((2, 6, 8), "Q"), ph((2, 8, 10), "K"))]),
        "matmul",
    ),
    "conv_bias_relu": (conv_bias_relu, "conv2d_nchw"),
    "conv_stride2": (
        lambda: ComputeDAG([ops.conv2d_nchw(ph((1, 4, 9, 9), "x"), ph((8, 4, 3, 3), "w"), 2, 1)]),
        "conv2d_nchw",
    ),
    "nchwc_bias_relu": (nchwc_bias_relu, "conv2d_nchwc"),
    "depthwise_relu": (
        lambda: ComputeDAG(
            [
                ops.relu(
                    ops.depthwise_conv2d_nchw(ph((1, 6, 10, 10), "x"), ph((6, 1, 3, 3), "w"), 1, 1)
                )
            ]
        ),
        "depthwise_conv2d",
    ),
    "max_pool": (lambda: ComputeDAG([ops.max_pool2d(ph((1, 4, 11, 11), "x"), 3, 2, 1)]), "pool2d"),
    "avg_pool_relu": (
        lambda: ComputeDAG([ops.relu(ops.avg_pool2d(ph((1, 4, 8, 8), "x"), 2))]),
        "pool2d",
    ),
    "global_pool": (
        lambda: ComputeDAG([ops.global_avg_pool2d(ph((1, 24, 5, 5), "x"))]),
        "global_pool2d",
    ),
    "blocked_conv_add_relu": (blocked_conv_add_relu, "blocked"),
    "blocked_stem": (
        lambda: ComputeDAG(
            [ops.conv2d_blocked(ph((1, 3, 11, 11), "x"), ph((2, 3, 3, 3, 16), "w"), 2)]
        ),
        "blocked",
    ),
    "blocked_depthwise": (
        lambda: ComputeDAG(
            [ops.depthwise_conv2d_blocked(ph((1, 2, 9, 9, 16), "x"), ph((2, 3, 3, 16), "w"), 2, 1)]
        ),
        "blocked",
    ),
    "blocked_max_pool": (
        lambda: ComputeDAG([ops.max_pool2d(ph((1, 2, 9, 9, 16), "x"), 3, 2, 1)]),
        "blocked",
    ),
    "blocked_global_pool": (
        lambda: ComputeDAG([ops.global_avg_pool2d(ph((1, 2, 5, 5, 16), "x"))]),
        "blocked",
    ),
}


def run_and_compare(state: State, dag: ComputeDAG, inputs, want, threads: int = 1) -> None:
    out = empty(dag.outputs[0].shape)
    out[...] = np.nan
    with num_threads(threads):
        load(build(lower(state)))(*inputs, out)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def inputs_and_reference(dag: ComputeDAG, seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(p.shape).astype(np.float32) for p in dag.placeholders]
    return inputs, evaluate(dag.outputs, dict(zip(dag.placeholders, inputs)))[0]


@pytest.mark.parametrize("name", sorted(DAGS))
def test_each_dag_matches_its_template(name):
    make, expected = DAGS[name]
    template = match_template(make())
    assert template is not None and template.name == expected


@pytest.mark.parametrize(
    "dag",
    [
        ComputeDAG([ops.softmax(ph((4, 100), "x"))]),
        ComputeDAG([ops.layer_norm(ph((4, 32), "x"), ph((32,), "g"), ph((32,), "b"))]),
        ComputeDAG([ops.relu(ph((4, 32), "x"))]),
        # a matmul whose consumer is not element-wise (a reduction): not the template's shape
        ComputeDAG([ops.reduce_sum(ops.matmul(ph((4, 8), "A"), ph((8, 6), "B")), axes=(1,))]),
    ],
)
def test_ops_without_a_template(dag):
    assert match_template(dag) is None
    with pytest.raises(NoTemplateError, match="no template for op"):
        template_for(dag)


@pytest.mark.parametrize("name", sorted(DAGS))
def test_sampled_configs_compile_and_equal_numpy(name):
    dag = DAGS[name][0]()
    template = match_template(dag)
    space = template.space(dag)
    inputs, want = inputs_and_reference(dag)
    rng = np.random.default_rng(len(name))
    indices = [space.fallback().index] + [int(i) for i in rng.integers(len(space), size=5)]
    for k, index in enumerate(indices):
        state = template.instantiate(dag, index)
        assert state.is_complete
        run_and_compare(state, dag, inputs, want, threads=1 + k % 2)
    assert template.fallback_state(dag).steps == template.instantiate(dag, indices[0]).steps


def tiny_dags():
    """Shapes whose spaces stay small enough to compile every distinct program."""
    yield ComputeDAG([ops.relu(ops.matmul(ph((1, 3), "A"), ph((3, 4), "B")))])
    yield ComputeDAG([ops.conv2d_nchw(ph((1, 2, 3, 4), "x"), ph((2, 2, 2, 3), "w"), 1, 0)])
    yield ComputeDAG([ops.conv2d_nchwc(ph((1, 2, 3, 3), "x"), ph((1, 2, 3, 3, 4), "wp"), 1, 1)])
    yield ComputeDAG(
        [ops.depthwise_conv2d_nchw(ph((1, 2, 3, 4), "x"), ph((2, 1, 3, 3), "w"), 1, 1)]
    )
    yield ComputeDAG([ops.max_pool2d(ph((1, 2, 4, 4), "x"), 2)])
    yield ComputeDAG([ops.global_avg_pool2d(ph((1, 8, 3, 3), "x"))])


@pytest.mark.slow
@pytest.mark.parametrize("k", range(6))
def test_every_program_of_a_small_space_equals_numpy(k):
    dag = list(tiny_dags())[k]
    template = match_template(dag)
    inputs, want = inputs_and_reference(dag)
    programs: dict[tuple, State] = {}
    for index in range(len(template.space(dag))):
        state = template.instantiate(dag, index)
        programs.setdefault(state.steps, state)
    for state in programs.values():
        run_and_compare(state, dag, inputs, want)


# -------------------------------------------------------- a user's template


def test_a_user_template_in_a_few_lines():
    """The example in docs/autotvm.md#user-template: a template for row sums (the `reduce` tag has none built in)."""

    @register_template("row_sum", matcher=REDUCE)
    def row_sum(cfg, dag):
        sch = Sched(dag)
        k = find_anchor(sch.state, [REDUCE])  # the reduction stage: [rows, cols]
        rows = sch.state.stages[k].op.shape[0]
        tile = cfg.define_split("tile_rows", rows, num_outputs=2, max_factor=16)
        outer, inner = sch.split(k, 0, tile.factors)  # loops by uid: 0 rows, 1 cols
        sch.parallel(k, [outer])
        order = cfg.define_reorder("order", [inner, 1], "all")
        sch.reorder(k, [outer] + order.apply([inner, 1]))
        sch.annotate(k, inner, cfg.define_annotate("ann", ["rows"], "try_unroll_vec")[0])
        return sch.state

    try:
        dag = ComputeDAG([ops.reduce_sum(ph((32, 50), "x"), axes=(1,))])
        template = match_template(dag)
        assert template is not None and template.name == "row_sum"
        assert len(template.space(dag)) == 5 * 2 * 3
        inputs, want = inputs_and_reference(dag)
        for index in range(len(template.space(dag))):
            run_and_compare(template.instantiate(dag, index), dag, inputs, want)
    finally:
        TEMPLATES.pop("row_sum")


# ------------------------------------------------------------ tune-op, CLI


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_tune_op_template_policy_end_to_end_and_resume(tmp_path):
    db = tmp_path / "records.db"
    args = ["tune-op", "matmul", "--shape", "32,48,16", "--records", str(db), "--threads", "1"]
    args += ["--policy", "template", "--tuner", "ga", "--json"]
    first = run_cli(*args, "--trials", "5")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["trials"] == 5 and 0 < summary["best_latency_s"] < 1
    second = run_cli(*args, "--trials", "4")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["resumed_records"] == 5 and again["trials"] == 4
    with create_store("sqlite", path=db) as store:
        records = list(store.records())
    hashes = [r.steps_hash for r in records]
    assert len(hashes) == len(set(hashes)) == 9  # the resumed run measured nothing twice
    indices = [r.settings["template"]["index"] for r in records]
    assert len(set(indices)) == 9 and all(
        r.settings["template"]["name"] == "matmul" for r in records
    )


def test_tune_op_template_policy_falls_back_for_softmax(capsys):
    from tasks.search_commands import op_task, search_policy

    policy = search_policy("template", op_task("softmax", "4,64"), tuner="xgb", seed=0)
    lines = [line for line in capsys.readouterr().err.splitlines() if "no template for" in line]
    assert type(policy).__name__ == "SketchPolicy"
    assert len(lines) == 1 and "softmax_4x64" in lines[0] and "sketch policy" in lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy", "template", "--tuner", "annealing"], "--tuner must be one of"),
        (["--policy", "autotvm"], "--policy must be one of"),
    ],
)
def test_bad_template_options_exit_2(args, message):
    from typer.testing import CliRunner

    from flows.cli import app

    got = CliRunner().invoke(app, ["tune-op", "matmul", "--shape", "8,8,8", *args])
    assert got.exit_code == 2 and message in got.output and "Traceback" not in got.output
