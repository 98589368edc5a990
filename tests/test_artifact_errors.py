"""A loaded artifact refuses what it cannot run, each time in one line: a CPU without a
feature its code uses, a newer format, damaged files, inputs of the wrong name, shape or
dtype. Also: the runtime's threads and buffers, the CLI's `compile` and `run`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from compiler.errors import UserError
from deploy import DeployError, Session
from deploy.cpu import check_cpu
from flows.cli import app
from models.artifact import export_artifact

RUNTIME_C = Path(__file__).parents[1] / "deploy" / "csrc" / "runtime.c"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlp") / "artifact"
    export_artifact("zoo:mlp", None, out)
    return out


@pytest.fixture
def artifact(built, tmp_path) -> Path:
    """A copy of the built artifact for this test to damage."""
    return Path(shutil.copytree(built, tmp_path / "artifact"))


def edit_manifest(artifact: Path, edit) -> None:
    path = artifact / "network.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def refused(artifact: Path, *fragments: str) -> str:
    with pytest.raises(DeployError) as info:
        Session(artifact)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, UserError)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_runs_and_matches_across_threads_and_buffers(built):
    x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    (want,) = Session(built, threads=1).run(None, {"input": x})
    session = Session(built, threads=2)
    assert [(i.name, i.shape, i.type) for i in session.get_inputs()] == [
        ("input", [1, 784], "tensor(float)")
    ]
    unaligned = np.empty(785, np.float32)[1:].reshape(1, 784)
    unaligned[...] = x
    strided = np.repeat(x, 2, axis=1)[:, ::2]  # not C-contiguous
    for feed in (x, unaligned, strided):
        (got,) = session.run(["probs"], {"input": feed})
        assert np.array_equal(got, want)


def test_a_cpu_without_a_feature_is_refused_by_name(artifact):
    edit_manifest(artifact, lambda m: m["target"]["cpu_flags"].update(amxfake="amx_fake_flag"))
    refused(artifact, "amx_fake_flag", "LLVM feature amxfake")
    with pytest.raises(DeployError, match="lacks avx512f"):
        check_cpu({"avx512f": "avx512f"}, "znver4", frozenset({"sse2", "avx2"}))


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: m.update(format_version=2), "format version 2 is newer"),
        (lambda m: m.update(format="other"), "not a sketchtune artifact"),
        (lambda m: m["weights"].pop("bytes"), "'weights.bytes'"),
        (lambda m: m["inputs"][0].update(shape=[1, -3]), "inputs[0].shape"),
    ],
)
def test_a_bad_manifest_is_one_line(artifact, edit, fragment):
    edit_manifest(artifact, edit)
    refused(artifact, fragment)


def test_bad_json_is_one_line(artifact):
    (artifact / "network.json").write_text('{"format": "sketchtune-artifact", ')
    refused(artifact, "network.json", "not a valid manifest")


def test_a_damaged_library_is_refused_before_it_is_loaded(artifact):
    # the digest is checked first: the dynamic loader maps a truncated library's
    # segments past its end and the process dies of SIGBUS on touching them
    library = artifact / "model.so"
    library.write_bytes(library.read_bytes()[:4096])
    refused(artifact, "model.so", "damaged")
    edit_manifest(artifact, lambda m: m["library"].update(file="missing.so"))
    refused(artifact, "missing.so", "cannot read")


def test_a_library_that_is_not_one_is_refused(artifact):
    import hashlib

    blob = b"not an ELF file"
    (artifact / "model.so").write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    edit_manifest(artifact, lambda m: m["library"].update(bytes=len(blob), sha256=sha))
    refused(artifact, "model.so", "cannot load the library")


def test_weights_of_the_wrong_size_are_refused(artifact):
    weights = artifact / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:-64])
    refused(artifact, "weights.bin", "the manifest says")
    size = weights.stat().st_size
    edit_manifest(artifact, lambda m: m["weights"].update(bytes=size))
    refused(artifact, "weights.bin", f"{size} bytes, expected")  # the C runtime's own check


@pytest.mark.parametrize(
    ("feed", "names", "fragment"),
    [
        ({}, None, "missing input 'input'"),
        ({"input": np.zeros((1, 783), np.float32)}, None, "input 'input' must be float32"),
        ({"input": np.zeros((1, 784), np.float64)}, None, "got float64 [1, 784]"),
        ({"input": np.zeros((1, 784), np.float32), "x": 0}, None, "unknown input 'x'"),
        ({"input": np.zeros((1, 784), np.float32)}, ["nope"], "unknown output 'nope'"),
    ],
)
def test_bad_inputs_are_refused_by_name(built, feed, names, fragment):
    with pytest.raises(DeployError) as info:
        Session(built).run(names, feed)
    assert fragment in str(info.value)


def test_bad_thread_counts_are_refused(built):
    with pytest.raises(DeployError, match="threads"):
        Session(built, threads=-1)


def test_the_c_runtime_compiles_without_warnings(tmp_path):
    include = RUNTIME_C.parents[1] / "include"
    done = subprocess.run(
        ["gcc", "-std=c11", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror", f"-I{include}",
         f"-I{RUNTIME_C.parent}", "-c", str(RUNTIME_C), "-o", str(tmp_path / "runtime.o")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_importing_deploy_needs_only_numpy():
    blocked = ("llvmlite", "onnx", "onnxruntime", "prefect", "xgboost", "pandas", "compiler")
    code = (f"import sys\nfor n in {blocked!r}: sys.modules[n] = None\n"
            "import deploy\nassert issubclass(deploy.DeployError, ValueError)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_cli_compile_and_run(tmp_path):
    runner = CliRunner()
    out = tmp_path / "art"
    result = runner.invoke(app, ["compile", "zoo:mlp", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tasks"] == 4 and summary["untuned_tasks"] == 4 and summary["arena_bytes"] > 0
    x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    np.savez(tmp_path / "x.npz", input=x)
    args = ["run", str(out), "--input", str(tmp_path / "x.npz"), "--output",
            str(tmp_path / "y.npz"), "--bench", "--runs", "5", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["runs"] == 5 and summary["latency_ms"] > 0
    with np.load(tmp_path / "y.npz") as y:
        (want,) = Session(out).run(None, {"input": x})
        assert np.array_equal(y["probs"], want)
    result = runner.invoke(app, ["run", str(out), "--input", str(tmp_path / "none.npz")])
    assert result.exit_code == 2 and "none.npz" in result.stderr
    np.savez(tmp_path / "bad.npz", input=x.astype(np.float64))
    result = runner.invoke(app, ["run", str(out), "--input", str(tmp_path / "bad.npz")])
    assert result.exit_code == 2 and "input 'input' must be float32" in result.stderr
