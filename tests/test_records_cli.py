"""`sketchtune records {show,best,export,import,distill} DB [FILE]`."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from compiler.records import MeasureRecord, SQLiteStore
from flows.cli import app

CLI = CliRunner()


def fill(path) -> None:
    steps = [{"kind": "split", "stage": 2, "iter": 0, "factors": [4]}]
    with SQLiteStore(path) as db:
        db.add([
            MeasureRecord("wa", "t", steps, (2e-3,), None, time.time(), task_name="mm", flop_count=10),
            MeasureRecord("wa", "t", [], (1e-3,), None, time.time(), task_name="mm", flop_count=10),
            MeasureRecord("wa", "t", [{"kind": "fuse"}], (), "RUN_TIMEOUT", time.time()),
            MeasureRecord("wb", "t", [], (5e-3,), None, time.time(), task_name="conv"),
        ])  # fmt: skip


def run(*args: str):
    return CLI.invoke(app, ["records", *args])


def test_show_best_export_import_distill(tmp_path):
    db, out, copy, best = (str(tmp_path / n) for n in ("r.db", "r.jsonl", "c.db", "b.db"))
    fill(db)
    shown = run("show", db, "--json")
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.stdout)
    assert summary["records"] == 4
    assert {w["task_name"]: w["errors"] for w in summary["workloads"]} == {"mm": 1, "conv": 0}
    top = json.loads(run("best", db, "--json").stdout)["best"]
    assert sorted(r["costs_s"][0] for r in top) == [1e-3, 5e-3]
    assert json.loads(run("export", db, out, "--json").stdout)["records"] == 4
    with open(out, "a") as f:
        f.write('{"workload_key": "truncated')
    imported = json.loads(run("import", copy, out, "--json").stdout)
    assert (imported["added"], imported["skipped"]) == (4, 1)
    assert json.loads(run("distill", db, best, "--json").stdout)["records"] == 2


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    missing = str(tmp_path / "missing.db")
    for args in (["show", missing], ["best", missing], ["export", missing, "x.jsonl"]):
        res = run(*args)
        assert res.exit_code == 2
        assert "missing.db" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    db = str(tmp_path / "r.db")
    fill(db)
    res = run("import", db, str(tmp_path / "nope.jsonl"))
    assert res.exit_code == 2 and "nope.jsonl" in res.stderr
    res = run("export", db)
    assert res.exit_code == 2 and "FILE" in res.stderr
    res = run("distill", db, db)
    assert res.exit_code == 2 and "exists" in res.stderr
    junk = tmp_path / "junk.db"
    junk.write_text("not a database " * 200)
    res = run("show", str(junk))
    assert res.exit_code == 2 and "junk.db" in res.stderr
