"""Real exported models (tests/data, written by tests/data/make_fixtures.py with torch):
imported, compiled untuned and compared with onnxruntime and with torch's saved outputs.
Needs only onnx and onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from typer.testing import CliRunner

from flows.cli import app
from models.compare import max_errors, ort_session
from models.network import compile_network
from models.onnx_import import import_model

DATA = Path(__file__).parent / "data"
BERT = DATA / "tiny_bert.onnx"
TOKENS = ("input_ids", "attention_mask", "token_type_ids")


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
    assert ("gather", "add", "add") in by_ops  # embedding sums: one task
    mask = next(ops for ops in by_ops if "where" in ops)
    assert {"cast", "logical_and"} <= set(mask)  # the attention mask: one task
    scores = [ops for ops in by_ops if ops[-3:] == ("batch_matmul", "multiply", "add")]
    assert len(scores) == 2  # per layer, Q K^T * scale + mask: one task


def test_tiny_bert_tasks_command_with_several_input_shapes():
    args = ["tasks", str(BERT), "--json"]
    for name in TOKENS:
        args += ["--input-shape", f"{name}=1,8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    tasks = json.loads(result.stdout)["tasks"]
    assert any(t["ops"][:1] == ["gather"] and [1, 8] in t["shapes"] for t in tasks)
