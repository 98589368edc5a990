"""Faults injected into the records: poisoned import files (bad costs, wrong types,
deep nesting), damaged databases (random bytes mid-file) and read-only ones.
Bad lines are skipped one by one, damage is one line (exit 2) and leaves nothing
half-written, and a read-only database is read without a single write."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compiler.records import MeasureRecord, RecordError, SQLiteStore, import_jsonl
from flows.cli import app

CLI = CliRunner()
GOOD = {"workload_key": "wk", "target": "t", "steps": [{"kind": "fuse", "stage": 1}],
        "costs_s": [1e-3, 1.1e-3], "error_kind": None, "timestamp": 1.0}  # fmt: skip


def good(n: int, **fields) -> dict:
    """A valid record, distinct per `n`."""
    return {**GOOD, "timestamp": float(n), "task_name": f"t{n}", **fields}


def run(*args: str):
    return CLI.invoke(app, ["records", *args])


def one_line_error(res, name: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in res.output, res.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(directory: Path) -> list[str]:
    """The files in `directory`, but SQLite's -wal and -shm (a read-only open of a
    WAL database may create them, empty, where the directory is writable)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(("-wal", "-shm")))


# ------------------------------------------------------------ poisoned imports

POISON = [  # (a bad line's fields over a good record, the field its reason names)
    ({"costs_s": [-1.0]}, "costs_s"),
    ({"costs_s": [0]}, "costs_s"),
    ({"costs_s": [0.0, 1e-3]}, "costs_s"),
    ({"costs_s": [float("nan")]}, "costs_s"),
    ({"costs_s": [float("inf")]}, "costs_s"),
    ({"costs_s": []}, "costs_s"),  # valid, but no cost
    ({"costs_s": [True]}, "costs_s"),
    ({"costs_s": ["1e-3"]}, "costs_s"),
    ({"costs_s": [1e308, 1e308]}, "costs_s"),
    ({"costs_s": 1e-3}, "costs_s"),
    ({"timestamp": float("nan")}, "timestamp"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"timestamp": -5.0}, "timestamp"),
    ({"workload_key": 7}, "workload_key"),
    ({"workload_key": ""}, "workload_key"),
    ({"target": None}, "target"),
    ({"steps": {"kind": "fuse"}}, "steps"),
    ({"steps": ["fuse"]}, "steps"),
    ({"steps": [{"kind": "split", "factors": [float("nan")]}]}, "steps"),
    ({"settings": [1, 2]}, "settings"),
    ({"settings": {"number": float("inf")}}, "settings"),
    ({"error_kind": "EXPLODED"}, "error_kind"),
    ({"error_kind": 3}, "error_kind"),
    ({"error_msg": 42}, "error_msg"),
    ({"build_s": "fast"}, "build_s"),
    ({"run_s": -1.0}, "run_s"),
    ({"run_s": float("inf")}, "run_s"),
    ({"task_name": ["mm"]}, "task_name"),
    ({"flop_count": "many"}, "flop_count"),
    ({"flop_count": 2**70}, "flop_count"),
    ({"flop_count": 1.5}, "flop_count"),
    ({"flop_count": True}, "flop_count"),
    ({"tool_version": 1.0}, "tool_version"),
    ({"cpu": "\ud800"}, "cpu"),
    ({"features": {}}, "features"),
    ({"cores": -2}, "cores"),
    ({"cores": "4"}, "cores"),
]


@pytest.mark.parametrize(("fields", "key"), POISON, ids=[f"{k}-{i}" for i, (_, k) in enumerate(POISON)])  # fmt: skip
def test_every_field_is_validated_when_read(fields, key):
    with pytest.raises(RecordError, match=key):
        MeasureRecord.from_json({**GOOD, **fields})


def test_deep_nesting_is_refused_without_recursion():
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecordError, match="steps: nested deeper"):
        MeasureRecord.from_json({**GOOD, "steps": [{"kind": "x", "v": deep}]})
    with pytest.raises(RecordError, match="settings: nested deeper"):
        MeasureRecord.from_json({**GOOD, "settings": {"v": deep}})


def test_a_full_record_and_an_error_record_pass():
    full = MeasureRecord(
        "wk", "t", [{"kind": "fuse"}], (1.0, 2.0), None, 12.5, "", 0.1, 0.2, "mm", 99,
        {"number": 3, "device": "cpu0"}, "0.1.0", "cpu", "+avx", 4,
    )  # fmt: skip
    assert MeasureRecord.from_json(json.loads(json.dumps(full.to_json()))) == full
    err = MeasureRecord.from_json({**GOOD, "costs_s": [], "error_kind": "RUN_TIMEOUT"})
    assert err.error_kind == "RUN_TIMEOUT" and err.mean_cost_s == float("inf")
    assert MeasureRecord.from_json({**GOOD, "flop_count": 1e9}).flop_count == 10**9


def poisoned_file(path: Path) -> tuple[list[str], set[int]]:
    """Good lines with every poison (and broken JSON, nesting past the recursion
    limit) between them in one batch; the bad lines' numbers (from 1)."""
    lines, bad = [], set()
    for i, (fields, _) in enumerate(POISON):
        lines.append(json.dumps(good(i)))
        lines.append(json.dumps({**good(1000 + i), **fields}))
        bad.add(len(lines))
    for text in ("[" * 100_000, '{"costs_s": [1e-3]', "not json at all", "[]", "null"):
        lines.append(text)
        bad.add(len(lines))
        lines.append(json.dumps(good(len(lines) + 5000)))
    path.write_text("\n".join(lines) + "\n")
    return lines, bad


def test_import_skips_each_bad_line_and_keeps_every_good_line_of_its_batch(tmp_path):
    lines, bad = poisoned_file(tmp_path / "p.jsonl")
    with SQLiteStore(tmp_path / "r.db") as db:
        report = import_jsonl(db, tmp_path / "p.jsonl")
        assert (report.added, report.duplicates, report.skipped) == (len(lines) - len(bad), 0, len(bad))  # fmt: skip
        assert [n for n, _ in report.bad_lines] == sorted(bad)[: len(report.bad_lines)]
        assert len(report.bad_lines) >= 5 and report.bad_lines[0][1].startswith("costs_s")
        recs = list(db.records())
        assert len(recs) == len(lines) - len(bad)
        assert all(r.costs_s and min(r.costs_s) > 0 for r in recs)
        assert all(r.mean_cost_s > 0 for r in db.best_all())


def test_records_import_names_the_bad_lines_and_best_stays_sane(tmp_path):
    lines, bad = poisoned_file(tmp_path / "p.jsonl")
    db = str(tmp_path / "r.db")
    res = run("import", db, str(tmp_path / "p.jsonl"), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["added"], summary["skipped"]) == (len(lines) - len(bad), len(bad))
    assert [b["line"] for b in summary["bad_lines"]][:3] == sorted(bad)[:3]
    first = min(bad)
    assert f"p.jsonl:{first}: costs_s" in res.stderr and f"{len(bad)} malformed" in res.stderr
    best = run("best", db, "--json")
    assert best.exit_code == 0, best.output
    assert all(r["costs_s"] and min(r["costs_s"]) > 0 for r in json.loads(best.stdout)["best"])


# ------------------------------------------------------------ damaged databases


def filled(path: Path, n: int = 400) -> Path:
    pad = "x" * 200
    with SQLiteStore(path) as db:
        db.add([MeasureRecord(f"wk{i % 5}", "t", [{"kind": "split", "factors": [i], "pad": pad}],
                              (1e-3 + i * 1e-6,), None, time.time(), task_name=f"task{i % 5}")
                for i in range(n)])  # fmt: skip
    return path


def damaged(tmp_path: Path, seed: int) -> Path:
    """A records database with 512 random bytes written into its middle."""
    path = filled(tmp_path / f"damaged{seed}.db")
    data = bytearray(path.read_bytes())
    rnd = random.Random(seed)
    at = rnd.randrange(len(data) // 4, 3 * len(data) // 4)
    data[at : at + 512] = rnd.randbytes(512)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_damaged_database_is_one_line_for_every_command_and_leaves_nothing(tmp_path, seed):
    db = damaged(tmp_path, seed)
    before = digest(db)
    (tmp_path / "in.jsonl").write_text(json.dumps(good(1)) + "\n")
    for args in (["show"], ["best"], ["export", "out.jsonl"], ["distill", "best.db"],
                 ["import", "in.jsonl"], ["show", "--json"], ["best", "--json"]):  # fmt: skip
        res = run(args[0], str(db), *[str(tmp_path / a) if "." in a else a for a in args[1:]])
        one_line_error(res, db.name)
        assert "damaged" in res.stderr
    assert digest(db) == before
    assert files(tmp_path) == [db.name, "in.jsonl"]


def test_queries_on_a_damaged_database_raise_record_error_naming_it(tmp_path):
    db = damaged(tmp_path, 1)
    for readonly in (True, False):
        with SQLiteStore(db, readonly=readonly) as store:
            with pytest.raises(RecordError, match=f"{db.name}: the records database is damaged"):
                store.check()
            with pytest.raises(RecordError, match=db.name):  # a query meets the damage
                store.summary()
    garbled = filled(tmp_path / "garbled.db", 3)
    with contextlib.closing(sqlite3.connect(garbled, isolation_level=None)) as conn:
        conn.execute("UPDATE measurements SET steps = '[{' WHERE id = 2")  # torn JSON text
    with (
        SQLiteStore(garbled, readonly=True) as store,
        pytest.raises(RecordError, match="garbled.db: the records database is damaged"),
    ):
        list(store.records())


def test_a_failed_export_keeps_the_old_file_and_leaves_no_partial_one(tmp_path):
    db = damaged(tmp_path, 2)
    out = tmp_path / "out.jsonl"
    out.write_text("the previous export\n")
    res = run("export", str(db), str(out))
    one_line_error(res, db.name)
    assert out.read_text() == "the previous export\n"
    assert files(tmp_path) == [db.name, "out.jsonl"]
    good_db = filled(tmp_path / "good.db", 3)
    assert json.loads(run("export", str(good_db), str(out), "--json").stdout)["records"] == 3
    assert len(out.read_text().splitlines()) == 3


# ------------------------------------------------------------ read-only databases


def test_a_read_only_open_writes_nothing(tmp_path):
    from compiler.records import StoreWriteError

    db = filled(tmp_path / "r.db", 20)
    before, files = digest(db), sorted(os.listdir(tmp_path))
    with SQLiteStore(db, readonly=True) as store:
        store.check()
        assert store.count() == 20 and len(store.best_all()) == 5 and len(store.summary()) == 5
        assert len(list(store.records())) == 20
        with pytest.raises(StoreWriteError, match="r.db"):
            store.add([MeasureRecord("new", "t", [], (1.0,), None, 1.0)])
        with pytest.raises(StoreWriteError, match="r.db"):
            store.claim("new", "t", ["abc"], "host:1:x")
    assert digest(db) == before
    assert store.readonly
    with SQLiteStore(db) as store:
        assert store.count() == 20
    assert sorted(os.listdir(tmp_path)) == files


def test_a_read_only_open_sees_what_a_live_writer_has_not_checkpointed(tmp_path):
    db = tmp_path / "r.db"
    with SQLiteStore(db) as writer:
        writer.add([MeasureRecord("a", "t", [], (1.0,), None, 1.0)])
        writer.add([MeasureRecord("b", "t", [], (2.0,), None, 2.0)])
        assert Path(f"{db}-wal").stat().st_size > 0
        with SQLiteStore(db, readonly=True) as reader:
            assert reader.count() == 2


def test_the_records_commands_do_not_modify_a_0444_database(tmp_path):
    """Root writes to a 0444 file all the same: the bytes tell whether a command wrote.
    The database predates the claims table, which a writing open would add."""
    db = filled(tmp_path / "r.db", 20)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("DROP TABLE IF EXISTS claims")
    db.chmod(0o444)
    before, mtime = digest(db), db.stat().st_mtime_ns
    for args in (["show"], ["best"], ["export", "o.jsonl"], ["distill", "d.db"]):
        res = run(args[0], str(db), *[str(tmp_path / a) for a in args[1:]])
        assert res.exit_code == 0, res.output
    assert digest(db) == before and db.stat().st_mtime_ns == mtime
    with SQLiteStore(tmp_path / "d.db", readonly=True) as best:
        assert best.count() == 5


@contextlib.contextmanager
def immutable(*paths: Path):
    """`chattr +i`: no process, root included, may write these files (or create
    files in these directories); skips the test where the attribute is unsupported."""
    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    done: list[Path] = []
    try:
        for p in paths:
            if subprocess.run(["chattr", "+i", p], capture_output=True, check=False).returncode:
                pytest.skip("chattr +i is not allowed here")
            done.append(p)
        yield
    finally:
        for p in reversed(done):
            subprocess.run(["chattr", "-i", str(p)], check=True)


def test_a_truly_read_only_database_and_directory_can_be_read(tmp_path):
    """What a read-only mount (or chmod 0444 on a file and 0555 on its directory for
    a user who is not root) does: every write fails, even the -shm file's."""
    ro = tmp_path / "ro"
    ro.mkdir()
    db = filled(ro / "r.db", 20)
    out = tmp_path / "out"
    out.mkdir()
    with immutable(db, ro):
        with pytest.raises(OSError):
            (ro / "probe").touch()
        for args in (["show"], ["best"], ["export", "e.jsonl"], ["distill", "d.db"]):
            res = run(args[0], str(db), *[str(out / a) for a in args[1:]], "--json")
            assert res.exit_code == 0, res.output
        assert json.loads(run("show", str(db), "--json").stdout)["records"] == 20
        res = run("import", str(db), str(out / "e.jsonl"))
        one_line_error(res, db.name)
    assert sorted(os.listdir(ro)) == ["r.db"]
    assert len((out / "e.jsonl").read_text().splitlines()) == 20


class FailingCommit:
    """A connection whose COMMIT fails with a full disk and whose ROLLBACK then fails
    too, as SQLite's do when the disk fills mid-transaction."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql, *args):
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        if sql == "ROLLBACK":
            raise sqlite3.OperationalError("cannot rollback - no transaction is active")
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_a_failed_commit_is_reported_not_the_rollback_that_followed(tmp_path):
    from compiler.records import StoreWriteError

    with SQLiteStore(tmp_path / "r.db") as store:
        store._db = FailingCommit(store._db)
        with pytest.raises(StoreWriteError) as err:
            store.add([MeasureRecord("wk", "t", [], (1e-3,), None, 1.0)])
        store._db = store._db.db
    assert "database or disk is full" in str(err.value)
    assert "rollback" not in str(err.value)
