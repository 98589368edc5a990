"""Reports of a real recorded run (zoo:mlp tuned for a few trials per task): the tables'
columns and sums, the written files, the self-contained page, the `report` command."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from test_reports_fixture import PEAK, run_copy, tuned_run
from typer.testing import CliRunner

from flows.cli import app
from reports import ReportError, build_report, load_run, report_tables
from reports.allocation import ROUND_COLUMNS, TASK_COLUMNS
from reports.convergence import CURVE_COLUMNS, ESTIMATE_COLUMNS
from reports.tables import LAYER_COLUMNS

PLOTS = ("latency-share", "roofline", "allocation", "convergence", "estimate")
TABLES = ("layers", "diagnosis", "allocation", "rounds", "estimate")


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return report_tables(tuned_run(), peak=PEAK)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    run = run_copy(tmp_path_factory.mktemp("report") / "run")
    build_report(run, peak=PEAK)
    return run


def test_layer_table_has_every_column_and_a_row_per_task(tables):
    layers = tables["layers"]
    meta = json.loads((tuned_run() / "run.json").read_text())
    assert list(layers.columns) == [*LAYER_COLUMNS, "diagnosis", "evidence"]
    assert layers["task_id"].tolist() == [t["id"] for t in meta["tasks"]]
    assert (layers["trials"] > 0).all()
    assert layers["best_s"].notna().all()  # every task has a valid measurement
    gflops = layers["flops"] / layers["best_s"] / 1e9
    assert layers["gflops"].tolist() == pytest.approx(gflops.tolist())
    assert layers["peak_share"].tolist() == pytest.approx((gflops / PEAK.gflops).tolist())
    assert layers["diagnosis"].notna().all() and layers["evidence"].str.len().gt(0).all()


def test_weighted_latencies_add_up_to_the_estimate_and_the_schedulers_f(tables):
    layers, summary = tables["layers"], tables["summary"].iloc[0]
    assert layers["weighted_s"].sum() * 1e3 == pytest.approx(summary["estimated_ms"])
    # the scheduler's f after the last round is the same sum of weight x best latency
    last_f_ms = tables["estimate"]["estimated_ms"].iloc[-1]
    assert summary["estimated_ms"] == pytest.approx(last_f_ms, rel=1e-9)


def test_shares_add_to_one(tables):
    assert tables["layers"]["latency_share"].sum() == pytest.approx(1.0)
    allocation = tables["allocation"]
    assert list(allocation.columns) == TASK_COLUMNS
    for col in ("budget_share", "time_share", "latency_share"):
        assert allocation[col].sum() == pytest.approx(1.0)


def test_rounds_follow_the_decision_log(tables):
    rounds = tables["rounds"]
    log = [json.loads(line) for line in (tuned_run() / "decisions.jsonl").read_text().splitlines()]
    assert list(rounds.columns) == ROUND_COLUMNS
    assert rounds["round"].tolist() == [d["round"] for d in log]
    assert rounds["trials"].sum() == log[-1]["total_trials"]
    assert (rounds["round_s"] >= 0).all() and (rounds["other_s"] >= 0).all()
    assert rounds["round_s"].sum() == pytest.approx(log[-1]["wall_s"])
    per_task = tables["allocation"].set_index("task_id")["trials"]
    assert per_task.to_dict() == rounds.groupby("task_id")["trials"].sum().to_dict()


def test_convergence_curves_are_running_minima_ending_at_the_best(tables):
    curves, layers = tables["convergence"], tables["layers"]
    assert list(curves.columns) == CURVE_COLUMNS
    assert list(tables["estimate"].columns) == ESTIMATE_COLUMNS
    for layer in layers.itertuples():
        curve = curves[curves["task_id"] == layer.task_id]
        assert curve["trial"].tolist() == list(range(1, layer.trials + 1))
        best = curve["best_s"].dropna()
        assert best.is_monotonic_decreasing
        assert best.iloc[-1] == pytest.approx(layer.best_s)
        assert curve["timestamp"].is_monotonic_increasing
    assert tables["estimate"]["estimated_ms"].is_monotonic_decreasing


def test_build_report_writes_csv_markdown_and_html(report_dir):
    csv = pd.read_csv(report_dir / "report.csv")
    assert list(csv.columns) == [*LAYER_COLUMNS, "diagnosis", "evidence"]
    md = (report_dir / "report.md").read_text()
    for title in ("Per-layer latency", "Diagnosis", "Time allocation", "Scheduler rounds",
                  "Estimated"):  # fmt: skip
        assert f"## {title}" in md
    assert md.count("| --- |") >= len(TABLES)


class _Page(HTMLParser):
    """Collects what the tests look for: element ids, tags, every attribute value."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            self.attrs.append((name, value or ""))
            if name == "id":
                self.ids.add(value or "")


def test_html_holds_every_table_and_plot_and_no_network_resource(report_dir):
    text = (report_dir / "report.html").read_text()
    page = _Page()
    page.feed(text)
    page.close()
    for name in TABLES:
        assert f"table-{name}" in page.ids, name
    for name in PLOTS:
        assert f"plot-{name}" in page.ids, name
    assert page.tags.count("svg") == len(PLOTS)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert "http:" not in text and "https:" not in text and "//" not in text
    assert all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", text))  # clip paths
    refs = [v for name, v in page.attrs if name in ("href", "src", "xlink:href")]
    assert refs and all(v.startswith("#") for v in refs)  # only ids inside the page


def test_report_command_rebuilds_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHTUNE_CACHE", str(tmp_path / "cache"))
    run = run_copy(tmp_path / "run")
    result = CliRunner().invoke(app, ["report", str(run), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out["reports"]) >= {"csv", "md", "html"}
    assert all(Path(p).is_file() for p in out["reports"].values())
    assert out["tasks"] == 4 and math.isfinite(out["estimated_ms"])


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_report_command_on_a_missing_or_empty_directory_exits_2_with_one_line(tmp_path, kind):
    target = tmp_path / "run"
    if kind == "empty":
        target.mkdir()
    result = CliRunner().invoke(app, ["report", str(target)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0], result.output


def test_a_missing_records_database_is_a_one_line_error(tmp_path):
    run = run_copy(tmp_path / "run")
    with pytest.raises(ReportError, match="no such records database"):
        load_run(run, tmp_path / "nope.db")


def test_a_malformed_decision_log_names_the_line(tmp_path):
    run = run_copy(tmp_path / "run")
    with (run / "decisions.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(ReportError, match=r"decisions.jsonl:\d+: not a JSON object"):
        load_run(run)


def test_profile_and_bench_fill_the_default_and_onnxruntime_columns(tmp_path):
    run = run_copy(tmp_path / "run")
    layers = report_tables(run, peak=PEAK)["layers"]
    profile = {
        "tasks": [
            {
                "id": int(t),
                "tuned_s": b,
                "default_s": 2 * b,
                "network_s": 1.5 * b,
                "onnxruntime_s": 3 * b,
            }
            for t, b in zip(layers["task_id"], layers["best_s"])
        ],
        "latency_ms": 1.0,
        "onnxruntime_latency_ms": 2.0,
    }
    (run / "profile.json").write_text(json.dumps(profile))
    (run / "bench.json").write_text(json.dumps({"latency_ms": 0.5, "onnxruntime_latency_ms": 0.7}))
    tables = report_tables(run, peak=PEAK)
    got = tables["layers"]
    assert got["speedup_vs_default"].tolist() == pytest.approx([2.0] * len(got))
    assert got["onnxruntime_vs_ours"].tolist() == pytest.approx([2.0] * len(got))
    assert tables["summary"].iloc[0]["onnxruntime_latency_ms"] == 0.7
