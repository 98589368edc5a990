"""The flow on a 2-worker Dask LocalCluster: builds and timings run on the workers (one
measuring device each, pinned to distinct cores), records are written by the flow."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def cluster():
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.daemon": False}):
        c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None)  # fmt: skip
    yield c
    c.close()


def test_flow_on_a_local_dask_cluster(tmp_path, cluster):
    from prefect_dask import DaskTaskRunner

    from flows.tune_model import tune_model
    from tasks.options import TuneOptions

    flow = tune_model.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    db = tmp_path / "records.db"
    summary = flow(
        TuneOptions(
            model="zoo:mlp",
            trials=16,
            records=str(db),
            out_dir=str(tmp_path / "run"),
            per_round=8,
            dask_address=cluster.scheduler_address,
            pin_dask_cores=True,
        )
    )
    assert summary["trials"] == 16
    assert summary["max_rel_err"] < 1e-3
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT settings FROM measurements").fetchall()
    settings = [s for s in (json.loads(r) for (r,) in rows) if "retimed" not in s]
    assert len(settings) == 16  # and the final re-timing's records, on this machine
    devices = {s.get("device") for s in settings if s}
    assert len(devices) == 2, devices  # both workers measured, each on its own core
