"""The CLI around the flow: every command's --help, and bad input as one line with exit 2."""

from __future__ import annotations

import pytest
from model_helpers import save, single_op_model
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()

COMMANDS = ["tune", "tune-op", "tasks", "sketches", "compile", "bench", "report", "nightly", "zoo",
            "records", "run", "compare-spaces"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def assert_bad(args: list[str], *fragments: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_tune_missing_model(tmp_path):
    assert_bad(["tune", str(tmp_path / "nope.onnx"), "--records", str(tmp_path / "r.db")],
               "nope.onnx")  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [("--policy", "magic", "--policy"), ("--scheduler", "fifo", "--scheduler"),
     ("--trials", "-3", "--trials"), ("--threads", "0", "--threads"),
     ("--task-runner", "ray-tracing", "--task-runner"),
     ("--per-round", "0", "--per-round"), ("--tuner", "bogus", "--tuner"),
     ("--devices", "bogus", "--devices"), ("--early-stopping", "0", "--early-stopping"),
     ("--seed", "-1", "--seed"), ("--dask-workers", "0", "--dask-workers"),
     ("--minutes", "0", "--minutes"), ("--minutes", "-5", "--minutes"),
     ("--minutes", "inf", "--minutes")],
)  # fmt: skip
def test_tune_bad_option(tmp_path, option, value, fragment):
    assert_bad(["tune", "zoo:mlp", option, value, "--records", str(tmp_path / "r.db")], fragment)


def test_tune_unsupported_op(tmp_path):
    path = save(single_op_model("LRN", [1, 2, 5, 5], size=3), tmp_path / "lrn.onnx")
    assert_bad(["tune", str(path), "--records", str(tmp_path / "r.db")], "LRN")


def test_nightly_bad_cron(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert_bad(["nightly", "zoo:mlp", "--cron", "every night", "--out", str(tmp_path)], "--cron")


def test_nightly_needs_a_server(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert_bad(["nightly", "zoo:mlp", "--out", str(tmp_path)], "prefect server start")


def test_tune_records_that_are_not_a_database(tmp_path):
    assert_bad(["tune", "zoo:mlp", "--records", str(tmp_path)], "--records", "a directory")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    assert_bad(["tune", "zoo:mlp", "--records", str(junk)], "junk.db", "not a records database")


def test_user_errors_of_every_command_are_one_line(tmp_path):
    assert_bad(["report", str(tmp_path / "no-run")], "no-run")
    assert_bad(["bench", str(tmp_path / "none.onnx")], "none.onnx")
    assert_bad(["records", "show", str(tmp_path)], str(tmp_path))
    assert_bad(["tune-op", "matmul", "--shape", "4,4", "--records", str(tmp_path / "r.db")],
               "--shape for matmul")  # fmt: skip


def test_minutes_without_trials_is_a_time_box():
    from tasks.options import NO_TRIAL_LIMIT, TuneOptions, trial_budget

    boxed = TuneOptions(model="zoo:mlp", trials=trial_budget(None, 30, 256), minutes=30)
    assert boxed.trials == NO_TRIAL_LIMIT and boxed.minutes == 30
    assert trial_budget(100, 30, 256) == 100 and trial_budget(None, None, 256) == 256
