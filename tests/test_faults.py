"""Faults from outside: a records database that stops taking writes, a runner that
cannot start, a parent killed while its runner hangs. Nothing measured is lost,
nothing is left running, and the run stops with one line."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from candidates import default_variants, matmul_task

from compiler.errors import StoppedError
from compiler.measure import Device, LocalBuilder, LocalRunner, MeasureInput, Measurer

TESTS = Path(__file__).parent


def cli(*args: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, timeout=600, check=False, preexec_fn=preexec)  # fmt: skip


def file_size_limit(limit_bytes: int):
    """In the child: files may not grow past `limit_bytes` (writes fail with EFBIG, as
    on a full disk, instead of the process being killed by SIGXFSZ)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def count(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


def test_a_database_that_stops_taking_writes_stops_the_run_and_keeps_every_result(tmp_path):
    db = tmp_path / "records.db"
    got = cli("tune-op", "matmul", "--shape", "32,32,32", "--trials", "96", "--per-round", "16",
              "--records", str(db), preexec=file_size_limit(300_000))  # fmt: skip
    assert got.returncode == 1, got.stderr[-3000:]
    lines = [x for x in got.stderr.splitlines() if x.startswith("stopped: ")]
    assert len(lines) == 1 and "Traceback" not in got.stderr, got.stderr[-3000:]
    assert str(db) in lines[0] and "cannot write records" in lines[0]
    assert "I/O error" in lines[0] or "disk is full" in lines[0]  # the cause, not the ROLLBACK's
    rescue = tmp_path / "records.db.unsaved.jsonl"
    assert str(rescue) in lines[0] and "records import" in lines[0]
    written, saved = count(db), len(rescue.read_text().splitlines())
    assert written > 0 and saved > 0
    rounds = [x for x in got.stderr.splitlines() if " round " in x]
    back = cli("records", "import", str(db), str(rescue), "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["added"] == saved
    assert count(db) == written + saved == 16 * (len(rounds) + 1)  # every result measured
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_runner_that_cannot_start_stops_the_run_with_one_line(tmp_path):
    task = matmul_task(16, 16, 16)
    inputs = [MeasureInput(task, s) for s in default_variants(task, 2, seed=0)]
    nowhere = [Device("cpu-none", (10_000,))]  # no such core: pinning fails at start-up
    with (
        LocalBuilder(workers=1) as builder,
        LocalRunner(devices=nowhere) as runner,
        pytest.raises(StoppedError, match="measuring failed") as err,
    ):
        Measurer(builder=builder, runner=runner).measure(inputs)
    assert "\n" not in str(err.value)


PARENT = """
import sys, time
sys.path[:0] = [{tests!r}, {tests!r} + "/bench"]
from candidates import default_variants, matmul_task
from compiler.measure import LocalBuilder, LocalRunner, MeasureInput, Measurer, MeasureSettings
from compiler.task import SearchTask

task = matmul_task(16, 16, 16)
state = default_variants(task, 1, seed=0)[0]
with LocalBuilder(workers=1, lower_fn="measure_faults:lower_with_faults") as builder:
    runner = LocalRunner(settings=MeasureSettings(run_timeout_s=600))
    runner.workers[0].wait_ready()
    print(runner.workers[0]._proc.pid, flush=True)
    Measurer(builder=builder, runner=runner).measure([MeasureInput(SearchTask("hang", task.dag), state)])
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited already
        return f.read().split(")")[-1].split()[0] != "Z"


def test_a_runner_dies_with_its_parent_while_its_candidate_hangs(tmp_path):
    env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(tests=str(TESTS))], env=env,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    runner_pid = int(parent.stdout.readline())
    time.sleep(3)  # the hanging candidate is built and running
    assert alive(runner_pid)
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while alive(runner_pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not alive(runner_pid)
