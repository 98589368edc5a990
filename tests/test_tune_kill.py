"""Kill `sketchtune tune` during tuning and rerun it: no record lost, the new budget
honoured, nothing measured twice (records are written as each result arrives)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter


def rows(db) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute(  # the tuning records, not the final re-timings
                "SELECT workload_key, steps_hash FROM measurements"
                " WHERE settings NOT LIKE '%\"retimed\"%'"
            ).fetchall()
        except sqlite3.OperationalError:  # the table is not created yet
            return []


def tune(
    tmp_path,
    trials: int,
    *,
    flow_process: bool = False,
    api_url: str | None = None,
    per_round: int = 8,
) -> subprocess.Popen:
    """`sketchtune tune zoo:mlp` in its own process group, records in tmp_path, on
    Prefect's temporary server or the one at `api_url`. With `flow_process` the flow
    runs in that process itself (no Ctrl-C forwarding parent)."""
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false",
               SKETCHTUNE_CACHE=str(tmp_path / "cache"))  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if flow_process:
        env["SKETCHTUNE_TUNE_CHILD"] = "1"
    cmd = [sys.executable, "-m", "flows.cli", "tune", "zoo:mlp", "--trials", str(trials),
           "--per-round", str(per_round), "--records", str(tmp_path / "records.db"),
           "--out", str(tmp_path / "run"), "--no-check", "--json"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip


def wait_for_records(proc: subprocess.Popen, db, count: int) -> None:
    deadline = time.time() + 400
    while len(rows(db)) < count and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]


def test_kill_and_rerun_keeps_records_and_budget(tmp_path, prefect_harness):
    """On the tests' Prefect server (a temporary server took 15-28 s to start here; the
    Ctrl-C test below runs on one)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    db = tmp_path / "records.db"
    proc = tune(tmp_path, 10_000, flow_process=True, api_url=url)  # killed with its group
    wait_for_records(proc, db, 20)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = rows(db)
    assert len(kept) >= 20
    rerun = tune(tmp_path, 16, flow_process=True, api_url=url)
    stdout, stderr = rerun.communicate(timeout=400)
    assert rerun.returncode == 0, stderr.decode()[-2000:]
    summary = json.loads(stdout)  # --json: one object on stdout, nothing else
    assert summary["trials"] == 16 and summary["resumed_trials"] >= len(kept)
    progress = [x for x in stderr.decode().splitlines() if x.startswith("round ")]
    assert progress and "trials 16/16" in progress[-1]  # stderr is no terminal: a line a round
    after = rows(db)
    assert set(kept) <= set(after)  # nothing lost
    assert len(after) == len(kept) + 16  # exactly the new budget
    assert max(Counter(after).values()) == 1  # nothing measured twice


def test_ctrl_c_stops_after_the_round_and_keeps_every_record(tmp_path):
    db = tmp_path / "records.db"
    proc = tune(tmp_path, 10_000)
    wait_for_records(proc, db, 16)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    summary = json.loads(stdout)
    assert summary["stopped"] is True
    with sqlite3.connect(db) as con:
        count, errors = con.execute(
            "SELECT count(*), count(error_kind) FROM measurements"
            " WHERE settings NOT LIKE '%\"retimed\"%'"
        ).fetchone()
    assert count == summary["trials"] >= 16
    assert errors == 0  # no candidate of the round in flight was killed


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_the_cli_stops_the_flow_at_once_and_keeps_every_record(tmp_path, prefect_harness):
    """kill -9 on `sketchtune tune`'s process group: the flow, in a session of its own,
    gets SIGHUP, stops without compiling or reporting, and leaves no process behind;
    the records were committed as each result arrived, mid-round included."""
    from prefect.settings import PREFECT_API_URL

    db = tmp_path / "records.db"
    proc = tune(tmp_path, 10_000, api_url=PREFECT_API_URL.value(), per_round=32)
    deadline = time.time() + 400
    while len(rows(db)) % 32 == 0 and time.time() < deadline:  # mid-round
        time.sleep(0.05)
    assert len(rows(db)) % 32, "no record committed in the middle of a round"
    below = descendants(proc.pid)  # the flow process and its builders and runners
    assert below
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 60
    while any(alive(p) for p in below) and time.time() < deadline:
        time.sleep(0.2)
    assert not [p for p in below if alive(p)], "processes left behind"
    assert not (tmp_path / "run" / "bench.json").exists()  # stopped, not compiled
    kept = rows(db)
    assert kept and max(Counter(kept).values()) == 1
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
