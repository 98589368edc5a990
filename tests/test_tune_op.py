"""`sketchtune tune-op`: real builds and measurements into a records database, resumable."""

import json
import subprocess
import sys

import pytest

from compiler.records import create as create_store


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# the resume path is the same for both policies; random's run is left to `-m slow`
@pytest.mark.parametrize("policy", ["sketch", pytest.param("random", marks=pytest.mark.slow)])
def test_tune_op_measures_new_candidates_and_resumes(tmp_path, policy):
    db = tmp_path / "records.db"
    args = ["tune-op", "matmul", "--shape", "32,48,16", "--records", str(db), "--threads", "1"]
    first = run_cli(*args, "--trials", "6", "--policy", policy, "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["trials"] == 6 and summary["op"] == "matmul"
    assert summary["shape"] == [32, 48, 16]
    assert 0 < summary["best_latency_s"] < 1 and summary["gflops"] > 0
    assert "matmul" in first.stderr  # the best schedule, as a loop nest
    second = run_cli(*args, "--trials", "4", "--policy", policy, "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["resumed_records"] == 6 and again["trials"] == 4
    with create_store("sqlite", path=db) as store:
        hashes = [r.steps_hash for r in store.records()]
    assert len(hashes) == len(set(hashes)) == 10  # nothing measured twice
    with create_store("sqlite", path=db) as store:
        first_steps = next(iter(store.records())).steps
    assert first_steps == _default_steps("matmul", "32,48,16")  # the baseline went first


def _default_steps(op: str, shape: str):
    from compiler.ops.workloads import op_workload
    from compiler.schedule.default import default_schedule
    from compiler.schedule.steps import steps_to_json

    return steps_to_json(default_schedule(op_workload(op, shape)).steps)


def test_tune_op_minutes_without_trials_is_a_time_box(tmp_path):
    db = tmp_path / "records.db"
    args = ["tune-op", "matmul", "--shape", "32,48,16", "--records", str(db), "--threads", "1"]
    got = run_cli(*args, "--minutes", "0.001", "--per-round", "4", "--json")
    assert got.returncode == 0, got.stderr
    summary = json.loads(got.stdout)
    # the first round starts at once; none starts after 0.06 s (a round takes longer)
    assert summary["stop_reason"] == "time budget spent" and summary["trials"] == 4


def test_tune_op_without_baseline_searches_only(tmp_path):
    db = tmp_path / "records.db"
    args = ["tune-op", "matmul", "--shape", "32,48,16", "--records", str(db), "--threads", "1"]
    got = run_cli(*args, "--trials", "3", "--no-baseline", "--json")
    assert got.returncode == 0, got.stderr
    with create_store("sqlite", path=db) as store:
        steps = [r.steps for r in store.records()]
    assert len(steps) == 3 and _default_steps("matmul", "32,48,16") not in steps


@pytest.mark.parametrize(
    "args, message",
    [
        (["tune-op", "matmul", "--shape", "1,2"], "--shape for matmul is M,N,K"),
        (["tune-op", "matmul", "--shape", "a,b,c"], "comma-separated integers"),
        (["tune-op", "convolution", "--shape", "1,2,3"], "unknown op 'convolution'"),
        (["tune-op", "matmul", "--shape", "4,4,4", "--policy", "grid"], "--policy must be"),
        (["sketches", "matmul"], "needs --shape"),
        (["tune-op", "matmul", "--shape", "4,4,4", "--threads", "-1"], "--threads must be >= 1"),
        (["tune-op", "matmul", "--shape", "4,4,4", "--devices", "bogus"], "--devices must be"),
        (["tune-op", "matmul", "--shape", "4,4,4", "--tuner", "bogus"], "--tuner must be"),
        (["tune-op", "matmul", "--shape", "4,4,4", "--early-stopping", "0"], "--early-stopping"),
    ],
)
def test_bad_tune_op_input_is_one_line_and_exit_code_2(args, message):
    got = run_cli(*args)
    assert got.returncode == 2
    assert message in got.stderr and "Traceback" not in got.stderr
