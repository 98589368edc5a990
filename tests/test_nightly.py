"""`sketchtune nightly` for real: a Prefect server on loopback (its own PREFECT_HOME),
the served deployment's cron and parameters, one run triggered through the API that
completes with its dated report directory and trend row."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CRON = "0 2 * * *"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def wait_for(fn, timeout_s: float, what: str):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            got = fn()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def prefect_server(tmp_path):
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: api(url, "/health"), 180, "the Prefect server")
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def test_nightly_serves_a_cron_deployment_and_a_triggered_run_completes(tmp_path, prefect_server):
    url, env = prefect_server
    env = dict(env, PREFECT_API_URL=url, SKETCHTUNE_CACHE=str(tmp_path / "cache"))
    out, db = tmp_path / "nightly", tmp_path / "records.db"
    log = open(tmp_path / "nightly.log", "w")  # noqa: SIM115 - closed below
    served = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "nightly", "zoo:mlp", "--cron", CRON,
         "--trials", "8", "--records", str(db), "--out", str(out)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        cwd=Path(__file__).parents[1],
    )  # fmt: skip
    try:
        dep = wait_for(lambda: api(url, "/deployments/name/tune-model/nightly-mlp"), 180,
                       "the nightly deployment")  # fmt: skip
        options = dep["parameters"]["options"]  # the flow's one parameter: TuneOptions
        assert options["model"] == "zoo:mlp"
        assert options["trials"] == 8 and options["dated"] is True
        assert options["trend"] == str(out / "trend.csv")
        crons = [s["schedule"].get("cron") for s in dep["schedules"]]
        assert crons == [CRON]
        # the server answers 503 while its database is busy (the served process is
        # registering at the same time): retry the POST like the GETs above
        run = wait_for(lambda: api(url, f"/deployments/{dep['id']}/create_flow_run", {}), 120,
                       "a flow run of the deployment")  # fmt: skip

        def finished():
            state = api(url, f"/flow_runs/{run['id']}")["state"]
            return state if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED") else None

        state = wait_for(finished, 420, "the triggered nightly run")
        assert state["type"] == "COMPLETED", (state, (tmp_path / "nightly.log").read_text()[-3000:])
    finally:
        served.terminate()
        served.wait(timeout=60)
        log.close()
    dated = [d for d in out.iterdir() if d.is_dir()]
    assert len(dated) == 1 and dated[0].name[:4].isdigit()  # YYYY-MM-DDTHHMMSS
    assert (dated[0] / "report.html").is_file() and (dated[0] / "run.json").is_file()
    assert (dated[0] / "artifact" / "network.json").is_file()  # the night's deployable network
    trend = (out / "trend.csv").read_text().splitlines()
    assert len(trend) >= 2 and str(dated[0]) in "\n".join(trend[1:])
