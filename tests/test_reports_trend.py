"""The nightly trend: a row per run and task appended to OUT/trend.csv, one line per night."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_reports_fixture import PEAK, run_copy

from reports import append_trend, build_report, report_tables, trend_table
from reports.trend import TREND_COLUMNS, read_trend

NIGHTS = {"2026-11-01": 0.031, "2026-11-02": 0.029, "2026-11-02-rerun": 0.027}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """OUT with three dated runs (two on the second night), each appended to the trend."""
    root = tmp_path_factory.mktemp("nightly")
    for name, latency_ms in NIGHTS.items():
        run = run_copy(root / name)
        bench = {"latency_ms": latency_ms, "onnxruntime_latency_ms": 0.05}
        (run / "bench.json").write_text(json.dumps(bench))
        append_trend(run, root / "trend.csv")
    return root


def test_each_run_appends_a_row_per_task(out):
    rows = read_trend(out / "trend.csv")
    tasks = len(json.loads((out / "2026-11-01" / "run.json").read_text())["tasks"])
    assert list(rows.columns) == TREND_COLUMNS
    assert len(rows) == len(NIGHTS) * tasks
    assert rows.groupby("run_dir").size().tolist() == [tasks] * len(NIGHTS)
    assert sorted(rows["date"].unique()) == ["2026-11-01", "2026-11-02"]
    assert rows["task_best_s"].notna().all()


def test_appending_the_same_run_again_replaces_its_rows(out, tmp_path):
    trend = tmp_path / "trend.csv"
    trend.write_text((out / "trend.csv").read_text())
    before = read_trend(trend)
    append_trend(out / "2026-11-01", trend)
    after = read_trend(trend)
    assert len(after) == len(before)
    key = ["run_dir", "task_id"]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True),
        after.sort_values(key).reset_index(drop=True),
    )


def test_the_trend_table_has_one_line_per_night_from_its_last_run(out):
    table = trend_table(out / "trend.csv")
    assert table["date"].tolist() == ["2026-11-01", "2026-11-02"]
    assert table["latency_ms"].tolist() == [0.031, 0.027]  # the second night's rerun
    task_cols = [c for c in table.columns if c.startswith("task")]
    assert task_cols == ["task0_ms", "task1_ms", "task2_ms", "task3_ms"]
    assert table[task_cols].notna().all().all()
    estimated = read_trend(out / "trend.csv").groupby("run_dir")["estimated_ms"].first()
    assert table["estimated_ms"].tolist() == pytest.approx(estimated.iloc[[0, 2]].tolist())


def test_a_run_under_out_reports_the_trend(out):
    tables = report_tables(out / "2026-11-02", peak=PEAK)
    assert len(tables["trend"]) == 2
    html = build_report(out / "2026-11-02", peak=PEAK)["html"].read_text()
    assert 'id="table-trend"' in html and 'id="plot-trend"' in html
