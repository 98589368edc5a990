"""`sketchtune tune` on exported models (tests/data): the flow tunes a small budget on a
language model and a UNet and writes its records. The models are given static input
shapes first (`tune` has no --input-shape option yet)."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

sys.path.insert(0, str(Path(__file__).parent / "data"))
from exported_fixtures import static_copy

pytestmark = pytest.mark.usefixtures("prefect_harness")
TRIALS, PER_ROUND = 16, 8


def tune(name: str, tmp_path: Path) -> dict:
    model = static_copy(name, tmp_path / f"{name}.onnx")
    args = ["tune", str(model), "--trials", str(TRIALS), "--per-round", str(PER_ROUND),
            "--no-check", "--records", str(tmp_path / "records.db"),
            "--out", str(tmp_path / "run"), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "name", ["tiny_gpt2", pytest.param("tiny_unet", marks=SLOW), pytest.param("gru_lm", marks=SLOW)]
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
