"""What a tuning run leaves behind besides records: the report files in its run
directory, the trend row of a nightly run, and Prefect artifacts — the per-task
table, a markdown summary and a progress bar — under keys stable per model, so
runs of the same model line up in the UI.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.tuning_session import TuningSession


def model_slug(model: str) -> str:
    """An artifact key part for a model: lowercase letters, digits and dashes."""
    name = model.removeprefix("zoo:") if model.startswith("zoo:") else Path(model).stem
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "model"


# report tables published as artifacts: (report table, artifact key suffix, description)
ARTIFACT_TABLES = [
    ("layers", "tasks", "per-task tuning table: latency, GFLOP/s, shares, diagnosis"),
    ("allocation", "allocation", "share of the trial budget and of tuning time per task"),
    ("rounds", "rounds", "the task scheduler's rounds: task chosen, trials, time by phase"),
    ("trend", "trend", "end-to-end and per-layer latency per nightly run"),
]


class Progress:
    """A Prefect progress artifact, moved after every round (share of the trial budget)."""

    def __init__(self, model: str) -> None:
        self.key = f"{model_slug(model)}-tuning-progress"
        self.artifact_id = create_progress_artifact(0.0, key=self.key, description="trials spent")

    def update(self, session: TuningSession) -> None:
        o = session.options
        pct = min(100.0, 100.0 * session.new_trials / max(1, o.trials))
        if o.minutes is not None:  # the time budget's share, if further along
            pct = max(pct, min(100.0, (time.time() - session.started) / (o.minutes * 0.6)))
        update_progress_artifact(self.artifact_id, pct)


def publish(session: TuningSession, run_dir: Path, summary: dict, trend: str | None) -> dict:
    """Reports into `run_dir`, the trend row, the Prefect artifacts; the written paths."""
    from reports import append_trend, build_report, report_tables

    written = {k: str(v) for k, v in build_report(run_dir, records=session.options.records).items()}
    if trend:
        append_trend(run_dir, trend)
        written["trend"] = str(trend)
    slug = model_slug(session.options.model)
    tables = report_tables(run_dir)
    for name, key, what in ARTIFACT_TABLES:
        frame = tables.get(name)
        if frame is not None and len(frame):
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            create_table_artifact(rows, key=f"{slug}-{key}", description=what)
    create_markdown_artifact(_summary_markdown(summary), key=f"{slug}-summary",
                             description="tuning run summary")  # fmt: skip
    return written


def _summary_markdown(summary: dict) -> str:
    def ms(x: object) -> str:
        return f"{x:.3f} ms" if isinstance(x, float) and math.isfinite(x) else "-"

    lines = [
        f"# {summary['model']}: tuning summary",
        "",
        f"- trials this run: {summary['trials']} (resumed {summary['resumed_trials']})",
        (
            f"- tasks: {summary['tasks']}; policy {summary['policy']}, "
            f"scheduler {summary['scheduler']}, {summary['threads']} thread(s)"
        ),
        f"- estimated end-to-end latency: {ms(summary.get('estimated_ms'))}",
        (
            f"- measured latency: {ms(summary.get('latency_ms'))}, onnxruntime "
            f"{ms(summary.get('onnxruntime_latency_ms'))}"
        ),
        f"- max relative error against onnxruntime: {summary.get('max_rel_err', '-')}",
        f"- run directory: `{summary['out_dir']}`; records: `{summary['records']}`",
        "",
        "| ID | Task | FLOP | Weight | Latency (ms) | GFLOP/s | Trials | Done |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in summary["task_table"]:
        lat = f"{r['latency_ms']:.4f}" if r["latency_ms"] is not None else "-"
        gf = f"{r['gflops']:.1f}" if r["gflops"] is not None else "-"
        lines.append(f"| {r['id']} | {r['task']} | {r['flops']:.3g} | {r['weight']} | {lat} | "
                     f"{gf} | {r['trials']} | {'yes' if r['done'] else ''} |")  # fmt: skip
    return "\n".join(lines)
