"""`sketchtune tune` on exported models (tests/data): the flow tunes a small budget on
every family of fixture, its dynamic dims bound by --input-shape, and writes its
records (one family in the default run, the others marked slow)."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

sys.path.insert(0, str(Path(__file__).parent / "data"))
from exported_fixtures import FIXTURES, load

pytestmark = pytest.mark.usefixtures("prefect_harness")
TRIALS, PER_ROUND = 16, 8


def tune(name: str, tmp_path: Path) -> dict:
    fixture = load(name)
    args = ["tune", str(fixture.path), *fixture.input_shape_args(), "--trials", str(TRIALS),
            "--per-round", str(PER_ROUND), "--no-check", "--retime", "0",
            "--records", str(tmp_path / "records.db"), "--out", str(tmp_path / "run"),
            "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "name", ["tiny_gpt2"] + [pytest.param(n, marks=SLOW) for n in FIXTURES if n != "tiny_gpt2"]
)
def test_tune_spends_the_budget_on_an_exported_model(name, tmp_path):
    summary = tune(name, tmp_path)
    assert summary["trials"] == TRIALS
    tuned = [t for t in summary["task_table"] if t["trials"]]
    assert tuned and all(t["latency_ms"] > 0 for t in tuned)
    with sqlite3.connect(tmp_path / "records.db") as con:
        (valid,) = con.execute(
            "SELECT COUNT(*) FROM measurements WHERE mean_cost_s IS NOT NULL"
        ).fetchone()
    assert valid >= 1
