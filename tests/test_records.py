"""The records database: best lookups, resume, JSON lines, distill, concurrent
writers and a tuning process killed mid-batch."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.records import (
    MeasureRecord,
    RecordError,
    SQLiteStore,
    distill,
    export_jsonl,
    import_jsonl,
)

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS), str(TESTS / "bench")])}  # fmt: skip


def rec(wk: str, cost: float | None, target: str = "llvm -mcpu=x", n: int = 0) -> MeasureRecord:
    steps = [{"kind": "split", "stage": 2, "iter": 0, "factors": [n]}]
    if cost is None:
        return MeasureRecord(wk, target, steps, (), "RUN_ERROR", time.time(), "boom")
    return MeasureRecord(wk, target, steps, (cost, cost * 1.1), None, time.time(), task_name=wk)


def child(*args: str) -> subprocess.Popen:
    cmd = [sys.executable, str(TESTS / "measure_child.py"), *args]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_best_per_workload_and_target(tmp_path):
    with SQLiteStore(tmp_path / "r.db") as db:
        db.add([rec("a", 3.0, n=1), rec("a", 1.0, n=2), rec("a", None, n=3), rec("b", 5.0)])
        db.add([rec("a", 0.5, target="llvm -mcpu=other", n=4)])
        best = db.best("a", "llvm -mcpu=x")
        assert best is not None and best.costs_s[0] == 1.0
        assert db.best("a", "llvm -mcpu=nope") is None
        assert db.best("c", "llvm -mcpu=x") is None
        everything = {(r.workload_key, r.target): r.costs_s[0] for r in db.best_all()}
        assert everything == {
            ("a", "llvm -mcpu=x"): 1.0,
            ("a", "llvm -mcpu=other"): 0.5,
            ("b", "llvm -mcpu=x"): 5.0,
        }
        assert len(db.best_all("llvm -mcpu=x")) == 2
        assert len(db.measured("a", "llvm -mcpu=x")) == 3
        summary = {row["workload_key"]: row for row in db.summary() if row["target"].endswith("x")}
        assert (summary["a"]["records"], summary["a"]["errors"]) == (3, 1)


def test_best_until_a_time_is_the_best_measured_by_then(tmp_path):
    early, late = rec("a", 3.0, n=1), rec("a", 1.0, n=2)
    late = dataclasses.replace(late, timestamp=early.timestamp + 60)
    with SQLiteStore(tmp_path / "r.db") as db:
        db.add([early, late])
        assert db.best("a", "llvm -mcpu=x").costs_s[0] == 1.0
        assert db.best("a", "llvm -mcpu=x", until=early.timestamp + 30).costs_s[0] == 3.0
        assert db.best("a", "llvm -mcpu=x", until=early.timestamp - 1) is None


def test_records_keep_every_field(tmp_path):
    r = MeasureRecord(
        "wk", "t", [{"kind": "fuse"}], (1.0, 2.0), None, 12.5, "", 0.1, 0.2, "mm", 99,
        {"number": 3, "device": "cpu0"}, "0.1.0", "cpu", "+avx", 4,
    )  # fmt: skip
    with SQLiteStore(tmp_path / "r.db") as db:
        assert db.add([r]) == 1
        assert db.add([r]) == 0  # an exact duplicate is ignored
        assert list(db.records()) == [r]
    assert r.mean_cost_s == 1.5


def test_not_a_database(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(RecordError, match="bad.db"):
        SQLiteStore(bad)


def test_jsonl_round_trip_with_malformed_and_truncated_lines(tmp_path):
    with SQLiteStore(tmp_path / "a.db") as db:
        db.add([rec("a", 1.0, n=1), rec("a", None, n=2), rec("b", 2.0, n=3)])
        assert export_jsonl(db, tmp_path / "r.jsonl") == 3
        originals = list(db.records())
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    for line in lines:
        obj = json.loads(line)
        assert {"workload_key", "target", "steps", "costs_s", "error_kind", "timestamp"} <= set(obj)
    assert json.loads(lines[1])["error_kind"] == "RUN_ERROR"
    assert json.loads(lines[0])["error_kind"] is None
    broken = lines + [
        "{not json",
        json.dumps({"workload_key": "x"}),
        lines[2][: len(lines[2]) // 2],
    ]
    (tmp_path / "broken.jsonl").write_text("\n".join(broken))
    with SQLiteStore(tmp_path / "b.db") as db:
        report = import_jsonl(db, tmp_path / "broken.jsonl")
        assert (report.added, report.duplicates, report.skipped) == (3, 0, 3)
        assert list(db.records()) == originals
        again = import_jsonl(db, tmp_path / "r.jsonl")
        assert (again.added, again.duplicates) == (0, 3)


def test_distill_keeps_the_best_per_workload(tmp_path):
    with SQLiteStore(tmp_path / "a.db") as db:
        db.add([rec("a", 3.0, n=1), rec("a", 1.0, n=2), rec("a", None, n=3), rec("b", 2.0)])
        assert distill(db, tmp_path / "best.db") == 2
    with SQLiteStore(tmp_path / "best.db") as best:
        assert sorted((r.workload_key, r.costs_s[0]) for r in best.records()) == [
            ("a", 1.0),
            ("b", 2.0),
        ]


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    db = str(tmp_path / "r.db")
    SQLiteStore(db).close()
    procs = [child(db, "write", tag, "300") for tag in ("p", "q")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with SQLiteStore(db) as store:
        assert store.count() == 600
        assert len(store.measured("wk-p", store.best_all()[0].target)) == 300


def test_sigkill_mid_batch_then_resume_measures_nothing_twice(tmp_path):
    db, count = str(tmp_path / "r.db"), 12
    proc = child(db, "tune", "5", str(count))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _count(db) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    committed = _count(db)
    assert 3 <= committed < count
    resumed = child(db, "tune", "5", str(count))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    stats = json.loads(out)
    assert stats == {"measured": count - committed, "skipped": committed}
    with SQLiteStore(db) as store:
        recs = list(store.records())
    assert len(recs) == count
    assert len({(r.workload_key, r.steps_hash) for r in recs}) == count


def _count(db: str) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
