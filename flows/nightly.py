"""`sketchtune nightly`: the tuning flow as a Prefect deployment on a cron schedule.

Each scheduled run resumes from the same records (the cost model starts warm
from them), writes a dated run directory under OUT and appends to OUT/trend.csv.
Schedules need a real Prefect server (`prefect server start`, then
PREFECT_API_URL=http://127.0.0.1:4200/api); the temporary server Prefect starts
on its own refuses them. `prefect.yaml` with a work pool is the alternative for
running on managed infrastructure (docs/pipeline.md#nightly).
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from dataclasses import asdict

from compiler.errors import UserError
from flows.run_artifacts import model_slug
from tasks.options import TuneOptions

HEALTH_TIMEOUT_S = 5.0
START_SERVER = "run `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"


class NightlyError(UserError):
    """A bad nightly option, or no server to schedule on."""


def check_cron(cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise NightlyError(f"--cron {cron!r}: not a valid cron expression "
                           "(five fields, e.g. '0 2 * * *')") from None  # fmt: skip


def nightly_deployment(options: TuneOptions, *, cron: str, name: str | None = None):
    """The RunnerDeployment of `tune_model` for `options` (dated runs) on `cron`."""
    check_cron(cron)
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise NightlyError(f"nightly needs a Prefect server for its schedule: {START_SERVER}")
    check_server(url)
    from flows.tune_model import tune_model

    return tune_model.to_deployment(
        name=name or f"nightly-{model_slug(options.model)}",
        cron=cron,
        parameters={"options": asdict(options)},
        description=f"nightly tuning of {options.model}",
        tags=["sketchtune", "nightly"],
    )


def check_server(url: str, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
    """A NightlyError unless a server answers GET URL/health within `timeout_s`.

    A server that answers with an HTTP error other than 404 (say 401: Prefect Cloud
    wants its key, which Prefect's own client sends) counts as answering."""
    health = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            raise NightlyError(
                f"PREFECT_API_URL={url}: no Prefect API there ({health} answers 404); "
                "the URL of a local server ends in /api, e.g. http://127.0.0.1:4200/api"
            ) from None
    except (OSError, ValueError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        text = (str(reason).strip().splitlines() or [type(err).__name__])[0]
        raise NightlyError(
            f"no Prefect server answers at PREFECT_API_URL={url} ({text}): {START_SERVER}"
        ) from None


def serve_deployment(deployment) -> None:
    """Register the deployment and run its scheduled runs until interrupted."""
    from prefect import serve

    serve(deployment, print_starting_message=False)
