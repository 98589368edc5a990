"""Concurrent tuning runs on one records database split the work: each candidate is
claimed by one run (`SQLiteStore.claim`, called by `Measurer.fresh`), so no
candidate is measured twice; a claim goes when its record is written, and claims
of a process that is gone are taken over.

Also a child process (not a test) for the two-process test:
python tests/test_records_claims.py DB SEED TRIALS READY_DIR TAG
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.records import MeasureRecord, SQLiteStore, TargetInfo, steps_hash

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS), str(TESTS / "bench")])}  # fmt: skip
TARGET = TargetInfo("llvm -mcpu=test", "test", "", 1)


def rec(wk: str, n: int, target: str = TARGET.target) -> MeasureRecord:
    steps = [{"kind": "split", "stage": 0, "iter": 0, "factors": [n]}]
    return MeasureRecord(wk, target, steps, (1e-3,), None, time.time())


def h(n: int) -> str:
    return rec("wk", n).steps_hash


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


# ------------------------------------------------------------- two processes


def task():
    from compiler import ops, te
    from compiler.task import SearchTask
    from compiler.te.dag import ComputeDAG

    a, b = te.placeholder((32, 32), name="A"), te.placeholder((32, 32), name="B")
    return SearchTask("mm", ComputeDAG([ops.matmul(a, b)]))


def tune_child(db: str, seed: int, trials: int, ready_dir: str, tag: str) -> None:
    """The tuning loop of `tune-op` on a tiny matmul with the real Measurer (scripted
    builds and timings of a few ms each), started together with the other child."""
    from scripted_backends import ScriptedBuilder, ScriptedRunner

    from compiler.measure import Measurer
    from compiler.policies import create
    from compiler.schedule.default import default_schedule
    from compiler.search.scorers import RandomScorer
    from compiler.task_scheduler import TaskScheduler

    t = task()
    policy = create("sketch", t.dag, model=RandomScorer(), population=64, seed=seed)

    def cost_of(inp):
        time.sleep(0.01)  # long enough for the two runs to interleave
        digest = hashlib.sha256(repr(inp.state.steps).encode()).hexdigest()
        return 1e-3 * (1 + int(digest[:4], 16) / 65536)

    sched = TaskScheduler([t], [policy], per_round=8, baselines=[default_schedule(t.dag)])
    with SQLiteStore(db) as store:
        measurer = Measurer(builder=ScriptedBuilder(), runner=ScriptedRunner(cost_of),
                            store=store, target=TARGET)  # fmt: skip
        Path(ready_dir, tag).touch()
        deadline = time.monotonic() + 60
        while len(os.listdir(ready_dir)) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        result = sched.tune(measurer, trials, ahead=False)
    print(json.dumps({"trials": result.trials, "skipped": measurer.stats.skipped,
                      "timed": measurer.runner.timed, "stop": result.stop_reason}))  # fmt: skip


def child(db: Path, seed: int, trials: int, ready: Path, tag: str) -> subprocess.Popen:
    cmd = [sys.executable, __file__, str(db), str(seed), str(trials), str(ready), tag]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("seeds", [(1, 2), (0, 0)], ids=["different-seeds", "same-seed"])
def test_two_tuning_processes_on_one_database_measure_nothing_twice(tmp_path, seeds):
    db, ready = tmp_path / "r.db", tmp_path / "ready"
    ready.mkdir()
    SQLiteStore(db).close()
    trials = 24
    procs = [child(db, seed, trials, ready, tag) for seed, tag in zip(seeds, "ab")]
    runs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        runs.append(json.loads(out))
    with sqlite3.connect(db) as conn:
        twice = conn.execute(
            "SELECT workload_key, steps_hash, COUNT(*) FROM measurements"
            " GROUP BY workload_key, target, steps_hash HAVING COUNT(*) > 1"
        ).fetchall()
        total = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        assert twice == [], runs
        assert total == sum(r["trials"] for r in runs) == sum(r["timed"] for r in runs), runs
        claims = conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
    assert claims == 0  # every claim went with its record
    # both spent their budgets on work of their own (the default schedule once), the
    # same seed too: the candidates another run held went to the policy, which
    # proposed others instead
    assert [r["trials"] for r in runs] == [trials, trials], runs
    assert sum(r["skipped"] for r in runs) >= 1, runs


# ----------------------------------------------------------------- one process


def test_claims_split_candidates_and_a_record_releases_its_claim(tmp_path):
    from compiler.records import claim_owner

    with SQLiteStore(tmp_path / "r.db") as db:
        a, b = claim_owner(), claim_owner()
        assert a != b and a.startswith(f"{socket.gethostname()}:{os.getpid()}:")
        assert db.claim("wk", TARGET.target, [h(1), h(2)], a) == {h(1), h(2)}
        assert db.claim("wk", TARGET.target, [h(1), h(2)], a) == {h(1), h(2)}  # still a's
        assert db.claim("wk", TARGET.target, [h(2), h(3)], b) == {h(3)}  # a lives: h(2) is a's
        assert db.claim("wk", "llvm -mcpu=other", [h(2)], b) == {h(2)}  # another target
        db.add([rec("wk", 2)])  # measured: its claim goes
        assert {c[2] for c in db.claims() if c[1] == TARGET.target} == {h(1), h(3)}
        assert db.claim("wk", TARGET.target, [h(2)], b) == set()  # measured: nobody's
        db.add([rec("wk", 1), rec("wk", 3)])
        assert [c[2] for c in db.claims() if c[1] == TARGET.target] == []


def test_claims_of_a_dead_process_are_taken_over(tmp_path):
    from compiler.records import claim_owner
    from compiler.records.claims import CLAIM_TTL_S

    host = socket.gethostname()
    dead = f"{host}:{dead_pid()}:0123abcd"
    alive = f"{host}:{os.getppid()}:0123abcd"  # the process that started pytest
    elsewhere = "another-host:1:0123abcd"
    with SQLiteStore(tmp_path / "r.db") as db:
        assert db.claim("wk", TARGET.target, [h(1), h(2)], dead) == {h(1), h(2)}
        assert db.claim("wk", TARGET.target, [h(3)], alive) == {h(3)}
        assert db.claim("wk", TARGET.target, [h(4)], elsewhere) == {h(4)}
        me = claim_owner()
        assert db.claim("wk", TARGET.target, [h(n) for n in (1, 2, 3, 4)], me) == {h(1), h(2)}
        owners = {c[2]: c[3] for c in db.claims()}
        assert owners == {h(1): me, h(2): me, h(3): alive, h(4): elsewhere}
    with sqlite3.connect(tmp_path / "r.db") as conn:  # claims older than the limit expire
        conn.execute("UPDATE claims SET since = since - ? WHERE owner = ?", (CLAIM_TTL_S + 60, elsewhere))  # fmt: skip
    with SQLiteStore(tmp_path / "r.db") as db:
        assert db.claim("wk", TARGET.target, [h(3), h(4)], me) == {h(4)}


def test_the_measurer_skips_what_another_live_run_has_claimed(tmp_path):
    from scripted_backends import ScriptedBuilder, ScriptedRunner

    from compiler.measure import MeasureInput, Measurer
    from compiler.policies import create
    from compiler.schedule.default import default_schedule
    from compiler.schedule.steps import steps_to_json

    t = task()
    states = [default_schedule(t.dag)]
    states += create("random", t.dag, seed=0).next_candidates(5)
    inputs = [MeasureInput(t, s) for s in states]
    hashes = [steps_hash(steps_to_json(s.steps)) for s in states]
    assert len(set(hashes)) == len(hashes)
    other = f"{socket.gethostname()}:{os.getpid()}:feedbeef"  # alive: this very process
    with SQLiteStore(tmp_path / "r.db") as db:
        assert db.claim(t.workload_key, TARGET.target, hashes[:2], other) == set(hashes[:2])
        m = Measurer(builder=ScriptedBuilder(), runner=ScriptedRunner(lambda inp: 1e-3),
                     store=db, target=TARGET)  # fmt: skip
        pairs = m.measure(inputs)
        assert [inp.state.steps for inp, _ in pairs] == [s.steps for s in states[2:]]
        assert m.stats.skipped == 2 and m.runner.timed == 4
        assert {c[2] for c in db.claims()} == set(hashes[:2])  # its own went with the records
        again = Measurer(builder=ScriptedBuilder(), runner=ScriptedRunner(lambda inp: 1e-3),
                         store=db, target=TARGET)  # fmt: skip
        assert again.fresh(inputs) == []  # measured or claimed


def test_an_old_database_gets_the_claims_table_and_a_read_only_open_needs_none(tmp_path):
    from compiler.records import claim_owner

    path = tmp_path / "old.db"
    with SQLiteStore(path) as db:
        db.add([rec("wk", 1)])
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE claims")  # as written before claims existed
    with SQLiteStore(path, readonly=True) as db:
        assert len(list(db.records())) == 1 and db.measured("wk", TARGET.target) == {h(1)}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name='claims'").fetchall() == []
    with SQLiteStore(path) as db:
        assert db.claim("wk", TARGET.target, [h(1), h(2)], claim_owner()) == {h(2)}


if __name__ == "__main__":
    tune_child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
