"""Real exported models (tests/data, written by tests/data/make_fixtures.py with torch):
one per family (BERT, GPT-2, DistilBERT, T5 and BART encoders, ViT, LSTM and GRU language
models, a UNet, a Conv1d audio front end; three also from the dynamo exporter), each
imported, compiled untuned and compared with onnxruntime and with torch's saved outputs,
timed by `sketchtune bench` and tuned by `sketchtune tune` (tests/test_exported_tune.py).
Needs only onnx and onnxruntime."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.compare import max_errors, ort_session
from models.network import compile_network
from models.onnx_import import import_model

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from exported_fixtures import FIXTURES, load

BERT = DATA / "tiny_bert.onnx"
TOKENS = ("input_ids", "attention_mask", "token_type_ids")
FAST_BENCH = ("tiny_gpt2", "conv1d_audio", "tiny_unet")  # the others: -m slow


def onnxruntime_outputs(model: onnx.ModelProto, inputs: dict) -> dict[str, np.ndarray]:
    session = ort_session(model, threads=1)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def test_fixtures_are_small_and_complete():
    files = sorted(DATA.glob("*.onnx"))
    assert {f.stem for f in files} == set(FIXTURES)
    sizes = {f.name: f.stat().st_size for f in [*files, *DATA.glob("*.npz")]}
    assert max(sizes.values()) < 1_000_000, sizes
    assert sum(sizes.values()) < 15_000_000


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_matches_onnxruntime_and_torch_untuned(name):
    fixture = load(name)
    model = fixture.proto()
    net = compile_network(import_model(model, input_shapes=fixture.input_shapes, label=name))
    ours = net.run(fixture.inputs)
    assert set(ours) == set(fixture.torch_outputs)
    assert max_errors(ours, onnxruntime_outputs(model, fixture.inputs))[1] < 1e-4
    assert max_errors(ours, fixture.torch_outputs)[1] < 1e-4
    assert all(np.ptp(a) > 0 for a in fixture.torch_outputs.values())  # not a constant output


@pytest.mark.parametrize(
    "name", [n if n in FAST_BENCH else pytest.param(n, marks=pytest.mark.slow) for n in FIXTURES]
)
def test_bench_command_runs_each_fixture(name):
    fixture = load(name)
    args = ["bench", str(fixture.path), "--json", *fixture.input_shape_args()]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["max_rel_err"] < 1e-4
    assert out["latency_ms"] > 0 and out["onnxruntime_latency_ms"] > 0
    assert out["untuned_tasks"] >= 1


def bert_case() -> tuple[onnx.ModelProto, dict[str, np.ndarray], dict[str, np.ndarray]]:
    saved = np.load(DATA / "tiny_bert.npz")
    inputs = {name: saved[name] for name in TOKENS}
    torch_out = {name: saved[name] for name in ("last_hidden_state", "pooler_output")}
    return onnx.load(str(BERT)), inputs, torch_out


def test_tiny_bert_fixture_is_small_and_takes_int64_tokens():
    model, inputs, _ = bert_case()
    assert BERT.stat().st_size < 1_000_000
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert types == {name: onnx.TensorProto.INT64 for name in TOKENS}
    assert all(a.dtype == np.int64 and a.shape == (2, 16) for a in inputs.values())


def test_tiny_bert_matches_onnxruntime_and_torch_untuned():
    model, inputs, torch_out = bert_case()
    # one --input-shape binds "batch" and "sequence" of all three token inputs
    graph = import_model(model, input_shapes={"input_ids": (2, 16)})
    assert {v.name: (v.shape, v.dtype) for v in graph.inputs} == {
        name: ((2, 16), "int64") for name in TOKENS
    }
    net = compile_network(graph)
    ours = net.run(inputs)
    session = ort_session(model, threads=1)
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, inputs)))
    assert max_errors(ours, theirs)[1] < 1e-4
    assert max_errors(ours, torch_out)[1] < 1e-4
    ops = {op for t in net.tasks for op in t.ops}
    assert {"gather", "where", "logical_and", "cast"} <= ops  # the token paths run compiled


def test_tiny_bert_mask_and_embedding_ops_fuse_into_their_neighbours():
    model, _, _ = bert_case()
    net = compile_network(import_model(model, input_shapes={"input_ids": (2, 16)}))
    by_ops = [s.ops for s in net.partition.subgraphs]
    # the word and token type lookups, the position sum and the layer norm: one task
    assert ("gather", "gather", "add", "add", "layer_norm") in by_ops
    mask = next(ops for ops in by_ops if "where" in ops)
    assert {"cast", "logical_and"} <= set(mask)  # the attention mask: one task
    scores = [ops for ops in by_ops if ops[-3:] == ("batch_matmul", "multiply", "add")]
    assert len(scores) == 2  # per layer, Q K^T * scale + mask: one task


def subgraph_ops(name: str) -> list[tuple[str, ...]]:
    fixture = load(name)
    graph = import_model(fixture.proto(), input_shapes=fixture.input_shapes)
    return [s.ops for s in compile_network(graph).partition.subgraphs]


def test_gpt2_linear_layers_run_unflattened_with_their_gelu():
    """GPT-2's Conv1D layers (Gemm on rows flattened by Reshape, reshaped back) run as
    one batched product on the rows in place (its weight in panels: matmul_panels): no
    copies, and the tanh GELU (x ** 3 as products) fuses into the matmul as its
    epilogue."""
    by_ops = subgraph_ops("tiny_gpt2")
    assert not any(ops[0] == "matmul" or ops[-1:] == ("reshape",) for ops in by_ops[:-1])
    mlp = [ops for ops in by_ops if ops[:2] == ("matmul_panels", "bias_add") and "tanh" in ops]
    assert len(mlp) == 2 and {"power", "multiply", "add"} <= set(mlp[0])
    scores = [ops for ops in by_ops if ops[-3:] == ("batch_matmul", "multiply", "add")]
    assert len(scores) == 2  # Q K^T * scale + causal mask, per layer


@pytest.mark.parametrize("name, most", [("lstm_lm", 4), ("gru_lm", 5)])
def test_recurrent_steps_are_few_kernels_of_shared_workloads(name, most):
    """Per step and direction: the recurrent matmul with the step's input and bias as its
    epilogue, and the gates' element-wise math in few subgraphs; the steps share their
    workloads, so each is one task run once per step (the loop over steps is the
    executor's call sequence)."""
    fixture = load(name)
    net = compile_network(import_model(fixture.proto(), input_shapes=fixture.input_shapes))
    steps = fixture.inputs["input_ids"].shape[1]
    per_step = [t for t in net.tasks if t.weight >= steps - 2]
    assert any({"matmul", "matmul_panels"} & set(t.ops) for t in per_step)
    runs = sum(t.weight for t in per_step)
    directions_layers = 4 if name == "gru_lm" else 2
    assert runs <= most * steps * directions_layers


@pytest.mark.parametrize("one_argument", [False, True])
def test_tiny_bert_tasks_command_with_several_input_shapes(one_argument):
    bindings = [f"{name}=1,8" for name in TOKENS]
    args = ["tasks", str(BERT), "--json"]
    if one_argument:  # --input-shape "input_ids=1,8 attention_mask=1,8 ..."
        args += ["--input-shape", " ".join(bindings)]
    else:
        for binding in bindings:
            args += ["--input-shape", binding]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    tasks = json.loads(result.stdout)["tasks"]
    assert any(t["ops"][:1] == ["gather"] and [1, 8] in t["shapes"] for t in tasks)
