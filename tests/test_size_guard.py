"""Tensors too big for any machine are refused up front, as one line naming them.

A model whose Expand, ConstantOfShape, Tile, Range... (or a graph input, an
initializer, a computed value) is over `settings().max_tensor_bytes`, an
`--input-shape` that big, a `tune-op --shape` whose tensors are that big: each is
one `error: ...` line naming the tensor and its size, exit code 2, before numpy
allocates anything. `nightly` with a PREFECT_API_URL nothing answers is one line too.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from model_helpers import save, single_op_model
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from compiler.settings import override
from flows.cli import app
from models.errors import ModelError
from models.onnx_import import import_model

runner = CliRunner()
fold_module = importlib.import_module("models.onnx_import.fold")  # not the function `fold`
SMALL = 1 << 20  # a 1 MiB limit: the models stay tiny, their big values a few MiB
TERA = 1_000_000  # (TERA, TERA) floats: 3.6 TiB


def assert_refused(args: list[str], *fragments: str, limit: int | None = None) -> str:
    """`sketchtune ARGS` exits 2 at once with one line naming the tensor and its size."""
    start = time.perf_counter()
    if limit is None:
        result = runner.invoke(app, args)
    else:
        with override(max_tensor_bytes=limit):
            result = runner.invoke(app, args)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and "more than the limit" in line, line
    assert any(unit in line for unit in ("MiB", "GiB", "TiB", "PiB")), line
    for fragment in fragments:
        assert fragment in line, line
    assert elapsed < 10, f"took {elapsed:.1f} s"
    return line


def model(nodes: list, inits: dict[str, np.ndarray], x_shape: list[int]) -> onnx.ModelProto:
    """A graph of `nodes` with input x (float32), output y and the given initializers."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    return onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    )


def folded_then_added(
    node: onnx.NodeProto, inits: dict[str, np.ndarray], computed: str | None = None
) -> onnx.ModelProto:
    """`c = node(constants)` (folded at import), then `y = x + c` (computed). With
    `computed`, that input of the node is `Abs` of the initializer `computed_raw`: a
    constant onnx shape inference does not see through, so only the importer can size c."""
    nodes = [node, helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    if computed:
        inits = dict(inits)
        inits[f"{computed}_raw"] = inits.pop(computed)
        nodes.insert(0, helper.make_node("Abs", [f"{computed}_raw"], [computed], name="abs"))
    return model(nodes, inits, [1])


def one(value: float, dtype=np.float32) -> np.ndarray:
    return np.array(value, dtype)


def ints(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


ones_value = helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])


def fold_inits(op: str, rows: int, cols: int) -> dict[str, np.ndarray]:
    """The arguments that make `op`'s output c (rows, cols) floats (Range: rows * cols)."""
    return {
        "ConstantOfShape": {"s": ints(rows, cols)},
        "Expand": {"d": np.ones((1, 1), np.float32), "s": ints(rows, cols)},
        "Tile": {"d": np.ones((1, 1), np.float32), "r": ints(rows, cols)},
        "Range": {"a": one(0.0), "b": one(float(rows * cols)), "step": one(1.0)},
        "Mul": {"a": np.ones((rows, 1), np.float32), "b": np.ones((1, cols), np.float32)},
        "MatMul": {"a": np.ones((rows, 1), np.float32), "b": np.ones((1, cols), np.float32)},
    }[op]


# op -> (node, the size argument that can be computed)
FOLDS = {
    "ConstantOfShape": (
        helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos", value=ones_value),
        "s",
    ),
    "Expand": (helper.make_node("Expand", ["d", "s"], ["c"], name="expand_c"), "s"),
    "Tile": (helper.make_node("Tile", ["d", "r"], ["c"], name="tile_c"), "r"),
    "Range": (helper.make_node("Range", ["a", "b", "step"], ["c"], name="range_c"), "b"),
    "Mul": (helper.make_node("Mul", ["a", "b"], ["c"], name="mul_c"), None),  # broadcasting
    "MatMul": (helper.make_node("MatMul", ["a", "b"], ["c"], name="matmul_c"), None),
}
CASES = [(op, computed) for op, (_, arg) in FOLDS.items() for computed in (False, True)
         if arg or not computed]  # fmt: skip


@pytest.fixture
def evaluated(monkeypatch) -> list[str]:
    """The op types onnx's reference evaluator is asked to fold."""
    calls: list[str] = []
    real = fold_module.ReferenceEvaluator

    def spy(proto: onnx.ModelProto, *args: object, **kwargs: object):
        calls.append(proto.graph.node[0].op_type)
        return real(proto, *args, **kwargs)

    monkeypatch.setattr(fold_module, "ReferenceEvaluator", spy)
    return calls


@pytest.mark.parametrize(("op", "computed"), [c for c in CASES if c[0] not in ("Mul", "MatMul")])
def test_a_huge_folded_constant_is_refused_before_it_is_computed(tmp_path, op, computed, evaluated):
    """(TERA, TERA) floats, 3.6 TiB, at the default limit (16 GiB)."""
    node, arg = FOLDS[op]
    m = folded_then_added(node, fold_inits(op, TERA, TERA), arg if computed else None)
    path = save(m, tmp_path / f"{op}.onnx")
    for command in ("tasks", "bench"):
        line = assert_refused([command, path], f"{op}.onnx", f"{node.name} ({op}, #", "'c'")
        assert "3.6 TiB" in line, line
    assert op not in evaluated, "the reference evaluator ran"


@pytest.mark.parametrize(("op", "computed"), CASES)
def test_a_folded_constant_over_the_limit_is_refused_before_it_is_computed(
    tmp_path, op, computed, evaluated
):
    """(1000, 1000) floats, 3.8 MiB, over a 1 MiB limit."""
    node, arg = FOLDS[op]
    m = folded_then_added(node, fold_inits(op, 1000, 1000), arg if computed else None)
    path = save(m, tmp_path / f"{op}.onnx")
    line = assert_refused(
        ["tasks", path], f"{op}.onnx", f"{node.name} ({op}, #", "'c'", limit=SMALL
    )
    assert "3.8 MiB" in line and "1.0 MiB" in line, line
    assert op not in evaluated, "the reference evaluator ran"


def test_folding_that_runs_out_of_memory_is_one_line(tmp_path, monkeypatch):
    """The fallback where the size is not known beforehand: MemoryError, one line."""

    class Exhausted:
        def __init__(self, *args: object) -> None:
            pass

        def run(self, *args: object) -> list:
            raise MemoryError("Unable to allocate 3.55 PiB for an array\nwith shape (...)")

    monkeypatch.setattr(fold_module, "ReferenceEvaluator", Exhausted)
    path = save(folded_then_added(FOLDS["Mul"][0], fold_inits("Mul", 2, 2)), tmp_path / "oom.onnx")
    result = runner.invoke(app, ["tasks", path])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert "oom.onnx" in lines[0] and "mul_c (Mul, #0)" in lines[0], lines[0]
    assert "memory" in lines[0] and "3.55 PiB" in lines[0], lines[0]


def expand_model(rows: int, cols: int, computed: bool) -> onnx.ModelProto:
    """`y = Expand(x, s)` of x (1, 1) to (rows, cols); with `computed`, s = Abs(s_raw):
    onnx shape inference does not know y's shape, only the importer's converter does."""
    nodes = [helper.make_node("Expand", ["x", "s"], ["y"], name="expand_node")]
    if computed:
        nodes.insert(0, helper.make_node("Abs", ["s_raw"], ["s"], name="abs"))
    return model(nodes, {"s_raw" if computed else "s": ints(rows, cols)}, [1, 1])


@pytest.mark.parametrize("computed", [False, True])
def test_expand_of_a_computed_value_to_terabytes(tmp_path, computed):
    path = save(expand_model(TERA, TERA, computed), tmp_path / "expand.onnx")
    for command in ("tasks", "bench"):
        line = assert_refused([command, path], "expand.onnx", "expand_node (Expand, #", "'y'")
        assert "3.6 TiB" in line, line


def test_nothing_big_is_allocated_before_the_refusal(tmp_path):
    """64 MiB Expands and a 64 MiB ConstantOfShape under a 1 MiB limit: import allocates
    none of it (numpy reports its allocations to tracemalloc)."""
    cos, arg = FOLDS["ConstantOfShape"]
    models = [
        expand_model(4096, 4096, computed=False),
        expand_model(4096, 4096, computed=True),
        folded_then_added(cos, {"s": ints(4096, 4096)}),
        folded_then_added(cos, {"s": ints(4096, 4096)}, computed=arg),
    ]
    for m in models:
        tracemalloc.start()
        try:
            with override(max_tensor_bytes=SMALL), pytest.raises(ModelError, match="more than"):
                import_model(m, label="big.onnx")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 << 20, f"import allocated {peak / 2**20:.0f} MiB before refusing"


def test_a_computed_value_over_the_limit_names_the_node(tmp_path):
    """MatMul of x (TERA, 1) and a (1, 1000) weight: a (TERA, 1000) output, 3.7 GiB."""
    w = np.ones((1, 1000), np.float32)
    path = save(
        single_op_model("MatMul", [TERA, 1], inits={"w": w}, extra_inputs=("w",)),
        tmp_path / "matmul.onnx",
    )
    assert_refused(["tasks", path], "matmul.onnx", "matmul_node (MatMul, #0)", "'y'",
                   "(1000000, 1000)", limit=1 << 30)  # fmt: skip


def test_an_emitted_value_shape_inference_cannot_size(tmp_path):
    """y = x (TERA, 1) + c (1, 1000), c = ConstantOfShape(Abs(s)): onnx does not know y's
    shape; the importer refuses it when it emits the add (3.7 GiB over a 1 GiB limit)."""
    nodes = [
        helper.make_node("Abs", ["s_raw"], ["s"], name="abs"),
        helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos", value=ones_value),
        helper.make_node("Add", ["x", "c"], ["y"], name="add_y"),
    ]
    path = save(model(nodes, {"s_raw": ints(1, 1000)}, [TERA, 1]), tmp_path / "add.onnx")
    assert_refused(["tasks", path], "add.onnx", "add_y (Add, #2)", "'y'", "(1000000, 1000)",
                   limit=1 << 30)  # fmt: skip


def test_a_static_graph_input_over_the_limit(tmp_path):
    path = save(single_op_model("Relu", [TERA, TERA]), tmp_path / "relu.onnx")
    line = assert_refused(["tasks", path], "relu.onnx", "input 'x'", "(1000000, 1000000)")
    assert "3.6 TiB" in line, line


def test_an_initializer_over_the_limit(tmp_path):
    w = np.ones((1000, 1000), np.float32)  # 3.8 MiB
    path = save(single_op_model("Add", [1], inits={"w": w}, extra_inputs=("w",)),
                tmp_path / "add.onnx")  # fmt: skip
    assert_refused(["tasks", path], "add.onnx", "'w'", "(1000, 1000)", limit=SMALL)


def test_a_constant_node_over_the_limit(tmp_path):
    value = numpy_helper.from_array(np.ones((1000, 1000), np.float32), "k")
    nodes = [
        helper.make_node("Constant", [], ["k"], name="big_constant", value=value),
        helper.make_node("Add", ["x", "k"], ["y"], name="add"),
    ]
    path = save(model(nodes, {}, [1]), tmp_path / "const.onnx")
    assert_refused(["tasks", path], "const.onnx", "big_constant (Constant, #0)", "'k'",
                   limit=SMALL)  # fmt: skip


def test_the_limit_from_the_environment_in_a_subprocess(tmp_path):
    """SKETCHTUNE_MAX_TENSOR_BYTES in the environment of `sketchtune bench`."""
    path = save(single_op_model("Relu", ["batch", 4]), tmp_path / "dyn.onnx")
    env = dict(os.environ, SKETCHTUNE_MAX_TENSOR_BYTES=str(1 << 16))
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "bench", path, "--input-shape", "x=8192,4"],
        env=env, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1],
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "'x'" in lines[0] and "128.0 KiB" in lines[0] and "64.0 KiB" in lines[0], lines[0]


def test_a_model_under_the_limit_still_imports(tmp_path):
    path = save(single_op_model("Relu", ["batch", 4]), tmp_path / "dyn.onnx")
    with override(max_tensor_bytes=SMALL):
        result = runner.invoke(app, ["tasks", path, "--input-shape", "x=64,4096"])  # exactly 1 MiB
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["zoo:mlp", "zoo:resnet18", "zoo:bert_encoder"])
def test_zoo_models_import_at_the_default_limit(monkeypatch, name):
    from models.load import load_graph

    monkeypatch.delenv("SKETCHTUNE_MAX_TENSOR_BYTES", raising=False)
    graph = load_graph(name)
    assert graph.nodes


# ------------------------------------------------------------------ tune-op


@pytest.mark.parametrize(
    ("op", "shape", "fragment"),
    [("matmul", "1000000,1000000,1000000", "(1000000, 1000000)"),
     ("conv2d", "1,4096,4096,4096,64,3,3,1,1", "(1, 4096, 4096, 4096)")],
)  # fmt: skip
def test_tune_op_refuses_tensors_over_the_limit(tmp_path, op, shape, fragment):
    line = assert_refused(
        ["tune-op", op, "--shape", shape, "--trials", "4", "--records", str(tmp_path / "r.db")],
        op, fragment,
    )  # fmt: skip
    assert "TiB" in line or "GiB" in line, line
    assert not (tmp_path / "r.db").exists()


def test_sketches_refuses_tensors_over_the_limit():
    assert_refused(["sketches", "matmul", "--shape", "1000000,1000000,1000000"], "matmul")


def test_tune_op_task_under_the_limit():
    from tasks.search_commands import op_task

    with override(max_tensor_bytes=3 * 64 * 64 * 4):  # A, B and C of 64 x 64 float32
        assert op_task("matmul", "64,64,64").dag.flop_count > 0


# ------------------------------------------------------------------ nightly


def dead_url() -> str:
    """An API URL on a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def test_nightly_with_no_server_answering(tmp_path, monkeypatch):
    url = dead_url()
    monkeypatch.setenv("PREFECT_API_URL", url)
    start = time.perf_counter()
    result = runner.invoke(app, ["nightly", "zoo:mlp", "--out", str(tmp_path / "out"),
                                 "--records", str(tmp_path / "r.db")])  # fmt: skip
    assert result.exit_code == 2, (result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    assert url in lines[0] and "prefect server start" in lines[0], lines[0]
    assert "serving" not in result.output
    assert time.perf_counter() - start < 15
