"""`sketchtune compare-spaces`: the verdict rules on scripted curves, a real run on a
tiny matmul, and bad input (exit code 2, one line)."""

import json
import math
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from compiler.records import create as create_store
from flows.cli import app
from tasks.compare_spaces import curve_summary, verdict


def summary(costs_s, flops=1e9):
    best, curve = math.inf, []
    for c in costs_s:
        best = min(best, c)
        curve.append(flops / best / 1e9 if math.isfinite(best) else 0.0)
    return curve_summary(curve, costs_s)


def test_curve_summary_counts_trials_to_95_percent_and_late_gains():
    s = summary([1.0, 0.5, 0.26, 0.25, 0.25, 0.25, 0.25, 0.25])
    assert s["gflops"] == pytest.approx(4.0) and s["best_latency_s"] == 0.25
    assert s["trials_to_95"] == 3  # 1/0.26 = 3.85 >= 0.95 x 4
    assert not s["improved_last_quarter"]
    late = summary([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, math.inf])
    assert late["improved_last_quarter"] and late["errors"] == 1


def test_verdicts():
    flat_slow = summary([0.1] * 8)  # 10 GFLOP/s, flat
    flat_fast = summary([0.02] * 8)  # 50 GFLOP/s, flat
    rising = summary([0.1] * 7 + [0.09])
    assert verdict(flat_fast, flat_slow, peak_gflops=100)[0] == "search problem"
    kind, reason = verdict(flat_slow, flat_fast, peak_gflops=100)
    assert kind == "search problem" and "sketch space holds a program 5.00x faster" in reason
    assert verdict(flat_slow, flat_slow, peak_gflops=100)[0] == "representation problem"
    assert verdict(flat_slow, rising, peak_gflops=100)[0] == "no clear problem"  # still rising
    assert verdict(flat_fast, flat_fast, peak_gflops=60)[0] == "no clear problem"  # near peak
    nothing = summary([math.inf] * 4)
    assert verdict(flat_slow, nothing, peak_gflops=100)[0] == "search problem"


def test_compare_spaces_on_a_tiny_matmul(tmp_path):
    db = tmp_path / "kept.db"
    got = subprocess.run(
        [sys.executable, "-m", "flows.cli", "compare-spaces", "matmul", "--shape", "32,32,32",
         "--trials", "6", "--per-round", "3", "--threads", "1", "--records", str(db), "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["op"] == "matmul" and out["shape"] == [32, 32, 32] and out["threads"] == 1
    assert out["peak_gflops"] > 0 and out["peak_source"]
    for side in ("template", "sketch"):
        assert out[side]["trials"] == 6 and out[side]["gflops"] > 0
        assert 1 <= out[side]["trials_to_95"] <= 6
    assert out["verdict"] in ("search problem", "representation problem", "no clear problem")
    assert "verdict:" in got.stderr and "template (xgb)" in got.stderr and "peak:" in got.stderr
    with create_store("sqlite", path=db) as store:
        records = list(store.records())
    assert len(records) == out["records_kept"] == 12
    assert sum("template" in r.settings for r in records) == 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["matmul", "--shape", "8,8"], "--shape for matmul is M,N,K"),
        (["matmul", "--shape", "8,8,8", "--trials", "0"], "--trials must be >= 1"),
        (["matmul", "--shape", "8,8,8", "--tuner", "bayes"], "--tuner must be one of"),
        (["softmax", "--shape", "4,64"], "compare-spaces needs a template"),
        (["conv3d", "--shape", "1,2,3"], "unknown op 'conv3d'"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    got = CliRunner().invoke(app, ["compare-spaces", *args])
    assert got.exit_code == 2, got.output
    lines = [line for line in got.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]
