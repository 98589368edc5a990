"""The `tune_model` Prefect flow end to end on zoo:mlp: records, the compiled network
checked against onnxruntime, the run directory, reports, artifacts, and resume."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest

pytestmark = pytest.mark.usefixtures("prefect_harness")

TRIALS, PER_ROUND = 24, 8


def tune_mlp(db, out, trials: int, **options) -> dict:
    """The flow on zoo:mlp with records in `db` and the run directory `out`."""
    from flows.tune_model import tune_model
    from tasks.options import TuneOptions

    options = {"per_round": PER_ROUND, "seed": 1, **options}
    return tune_model(TuneOptions(model="zoo:mlp", trials=trials, records=str(db),
                                  out_dir=str(out), **options))  # fmt: skip


TUNING = "settings NOT LIKE '%\"retimed\"%'"  # the tuning records, not the re-timings


def record_rows(db) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as con:
        return con.execute(
            f"SELECT workload_key, steps FROM measurements WHERE {TUNING}"
        ).fetchall()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):

    root = tmp_path_factory.mktemp("flow")
    db, out = root / "records.db", root / "run"
    return tune_mlp(db, out, TRIALS), db, out


def test_flow_measures_the_budget_into_the_records(first_run):
    summary, db, _ = first_run
    assert summary["trials"] == TRIALS
    rows = record_rows(db)
    assert len(rows) == TRIALS
    assert max(Counter(rows).values()) == 1  # nothing measured twice


def test_flow_network_matches_onnxruntime(first_run):
    summary, _, out = first_run
    assert summary["max_rel_err"] < 1e-3
    assert summary["tuned_tasks"] >= 1
    assert summary["latency_ms"] > 0 and summary["onnxruntime_latency_ms"] > 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["max_rel_err"] == summary["max_rel_err"]


def test_flow_writes_the_run_directory(first_run):
    summary, db, out = first_run
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "zoo:mlp" and run["finished"] is not None
    assert run["records"] == str(db.resolve())
    assert [t["id"] for t in run["tasks"]] == list(range(len(run["tasks"])))
    lines = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert sum(line["trials"] for line in lines) == TRIALS
    assert {"round", "task", "choice", "f_s", "gradients"} <= set(lines[0])
    profile = json.loads((out / "profile.json").read_text())
    assert [t["id"] for t in profile["tasks"]] == [t["id"] for t in run["tasks"]]
    assert all(t["tuned_s"] > 0 and t["default_s"] > 0 for t in profile["tasks"])
    retimed = json.loads((out / "retime.json").read_text())
    assert retimed and all(r["contenders"] >= 2 for r in retimed)
    with sqlite3.connect(db) as con:
        n = con.execute(f"SELECT count(*) FROM measurements WHERE NOT ({TUNING})").fetchone()[0]
    assert n == sum(r["contenders"] for r in retimed)  # every finalist's re-timing recorded
    for name in ("report.csv", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert set(summary["reports"]) >= {"csv", "md", "html"}


def test_flow_creates_artifacts(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )

    summary = first_run[0]
    keys = ["mlp-tasks", "mlp-allocation", "mlp-rounds", "mlp-summary", "mlp-tuning-progress"]
    with get_client(sync_client=True) as client:  # this run's (other tests run zoo:mlp too)
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary["flow_run_id"]])),
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) == set(keys)
    assert "tuning summary" in by_key["mlp-summary"].data
    assert by_key["mlp-tuning-progress"].data == pytest.approx(100.0)


def test_rerun_resumes_and_spends_only_the_new_budget(first_run):

    _, db, out = first_run
    before = record_rows(db)
    summary = tune_mlp(db, out, PER_ROUND, check=False)
    after = record_rows(db)
    assert summary["resumed_trials"] == len(before)
    assert len(after) == len(before) + PER_ROUND
    assert max(Counter(after).values()) == 1


def test_compile_writes_the_tuned_kernels(first_run, tmp_path):
    from typer.testing import CliRunner

    from compiler.records import SQLiteStore, host_target_info
    from flows.cli import app

    _, db, _ = first_run
    result = CliRunner().invoke(app, ["compile", "zoo:mlp", "--records", str(db), "--out",
                                      str(tmp_path / "net"), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "net" / "network.json").read_text())
    store = SQLiteStore(db)
    for entry in manifest["tasks"]:
        assert (tmp_path / "net" / entry["object"]).stat().st_size > 0
        target = host_target_info().target  # the re-timing's winner, else the best
        best = store.retimed(entry["workload_key"], target) or store.best(
            entry["workload_key"], target
        )
        assert entry["tuned"] == (best is not None)
        if best is not None:
            assert entry["steps"] == best.steps
    assert json.loads(result.stdout)["tuned_tasks"] == sum(e["tuned"] for e in manifest["tasks"])


def test_template_policy_records_configs_and_falls_back_for_softmax(tmp_path):

    db = tmp_path / "records.db"
    for trials in (16, 8):  # the second run resumes: configs come back from the records
        tune_mlp(db, tmp_path / "run", trials, policy="template", per_round=4, check=False)
    with sqlite3.connect(db) as con:
        rows = con.execute(f"SELECT task_name, settings, steps FROM measurements WHERE {TUNING}")
        rows = rows.fetchall()
    assert len(rows) == 24 and len({(t, s) for t, _, s in rows}) == 24
    templated = {t for t, s, _ in rows if "template" in json.loads(s)}
    assert any("matmul" in t for t in templated)
    assert not any("softmax" in t for t in templated)  # no template: the sketch policy
