"""The one entry point: a run directory in, report tables and files out.

>>> paths = build_report("out/2026-11-01")            # doctest: +SKIP
>>> paths["html"]                                      # doctest: +SKIP
PosixPath('out/2026-11-01/report.html')
>>> tables = report_tables("out/2026-11-01")          # doctest: +SKIP
>>> tables["layers"][["task_id", "latency_share", "diagnosis"]]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from compiler.measure.peak import Peak, machine_peak
from reports import html, plots
from reports.allocation import rounds_table, task_allocation
from reports.convergence import estimate_curve, task_curves
from reports.diagnosis import diagnose
from reports.render import write_csv, write_markdown
from reports.run import Run, load_run
from reports.tables import layer_table, summary
from reports.trend import trend_table

TITLES = {
    "layers": "Per-layer latency",
    "diagnosis": "Diagnosis per layer",
    "allocation": "Time allocation per task",
    "rounds": "Scheduler rounds",
    "convergence": "Convergence per task",
    "estimate": "Estimated end-to-end latency",
    "trend": "Trend across nightly runs",
}
NOTES = {
    "layers": "One row per tuning task (a distinct workload; weight = how often the network "
    "runs it). Latency is the best measured program (the default schedule's time where "
    "untuned); weighted = weight x latency, and the weighted latencies add up to the "
    "end-to-end estimate. % of peak and % of roofline compare GFLOP/s with this machine's "
    "measured peak and with min(peak, intensity x bandwidth). vs default: the default "
    "schedule's time over the tuned one. Ours in network and onnxruntime in network: the "
    "task's time per inference (all its occurrences) inside whole-network runs of each, "
    "measured alike (each of our kernel calls and each onnxruntime node it maps to, the "
    "median over the profiled runs); onnxruntime / ours is their ratio (> 1: we are faster), not "
    "against the isolated best of the latency columns. Empty with a note where "
    "onnxruntime computes the task together with another one, or a node next to it cannot "
    "be mapped.",
    "diagnosis": "What to do next about each layer, with the numbers behind the verdict: "
    "still improving (give it more trials), search problem (the space holds faster programs "
    "the search misses), representation problem (plateaued far below the roofline: needs a "
    "new sketch rule, template or layout), plateaued, at roofline, untuned.",
    "allocation": "Share of the trials and of the tuning wall time each task received, next "
    "to its share of the end-to-end latency; budget / latency far above 1 means the task got "
    "more than it is worth.",
    "rounds": "Each scheduler round: the task chosen and why, trials, and wall time in "
    "search, build, measurement and the rest.",
    "convergence": "Best latency found against the task's trials (records in time order).",
    "estimate": "The scheduler's end-to-end estimate after each round, against total trials "
    "and wall time.",
    "trend": "One line per night: end-to-end latency, onnxruntime, the estimate and each "
    "task's best latency (ms).",
}
TABLE_ORDER = ("layers", "diagnosis", "allocation", "rounds", "estimate", "trend")


def run_peak(run: Run) -> Peak:
    """The peak the run was measured against: from the profile when it recorded one
    (a report rebuilt on another machine must not use that machine's peak), else measured."""
    stored = (run.profile or {}).get("peak")
    if isinstance(stored, dict):
        try:
            return Peak(**stored)
        except TypeError:
            pass  # written by another version: measure
    return machine_peak(run.threads)


def tables_of(run: Run, peak: Peak) -> dict[str, pd.DataFrame]:
    """Every report table of a loaded run (see report_tables)."""
    layers = layer_table(run.tasks, run.records, peak, run.profile)
    accuracy = {
        int(t["id"]): float(t["cost_model_accuracy"])
        for t in (run.profile or {}).get("tasks", [])
        if t.get("cost_model_accuracy") is not None
    }
    verdicts = diagnose(
        layers, run.records, peak, policy=str(run.meta.get("policy", "")), ranking_accuracy=accuracy
    )
    layers = layers.merge(verdicts, on="task_id", how="left")
    rounds = rounds_table(run.decisions, run.tasks)
    out = {
        "summary": pd.DataFrame([summary(layers, run.meta, run.bench, peak)]),
        "layers": layers,
        "allocation": task_allocation(rounds, layers, run.records),
        "rounds": rounds,
        "convergence": task_curves(run.tasks, run.records),
        "estimate": estimate_curve(run.decisions),
    }
    trend_csv = run.path.parent / "trend.csv"
    if trend_csv.is_file():
        out["trend"] = trend_table(trend_csv)
    return out


def report_tables(
    run_dir: str | Path, records: str | Path | None = None, *, peak: Peak | None = None
) -> dict[str, pd.DataFrame]:
    """The report's tables as DataFrames, keyed: summary (one row), layers (with
    diagnosis and evidence), allocation, rounds, convergence (long: task, trial, best),
    estimate, and trend (when OUT/trend.csv is beside the run directory)."""
    run = load_run(run_dir, records)
    return tables_of(run, peak or run_peak(run))


def build_report(
    run_dir: str | Path, records: str | Path | None = None, *, peak: Peak | None = None
) -> dict[str, Path]:
    """Write report.csv (+ .parquet with pyarrow), report.md and report.html into `run_dir`.

    Returns {"csv": ..., "md": ..., "html": ...[, "parquet": ...]}. A missing or
    malformed run directory raises ReportError with a one-line message.
    """
    run = load_run(run_dir, records)
    peak = peak or run_peak(run)
    return write_reports(run.path, tables_of(run, peak), peak)


def write_reports(run_dir: Path, tables: dict[str, pd.DataFrame], peak: Peak) -> dict[str, Path]:
    """The files of `build_report` from tables already made (see tables_of)."""
    head = tables["summary"].iloc[0].to_dict()
    written = write_csv(tables["layers"], run_dir)
    named = {**tables, "diagnosis": tables["layers"]}  # a narrow view of the same rows
    shown = {k: named[k] for k in TABLE_ORDER if k in named}
    written["md"] = write_markdown(head, shown, TITLES, run_dir / "report.md")
    page = html.page(summary=head, sections=sections(tables, peak))
    written["html"] = html.write_html(page, run_dir / "report.html")
    return written


def sections(tables: dict[str, pd.DataFrame], peak: Peak) -> list[tuple[str, str, str, str]]:
    """The HTML page's sections in reading order: (id, title, note, body)."""
    layers = tables["layers"]
    out = [
        ("layers", TITLES["layers"], NOTES["layers"], html.table_html("layers", layers)),
        ("diagnosis", TITLES["diagnosis"], NOTES["diagnosis"],
            html.table_html("diagnosis", layers)),
        ("latency-share", "Latency share", "", html.figure_html(
            "latency-share", plots.latency_share_plot(layers), "weight x latency / estimate")),
        ("roofline", "Roofline", "", html.figure_html(
            "roofline", plots.roofline_plot(layers, peak),
            "each task (labelled by id) at its arithmetic intensity; the line is the bound")),
        ("allocation", TITLES["allocation"], NOTES["allocation"], html.figure_html(
            "allocation", plots.allocation_plot(tables["allocation"]), "shares per task")
            + html.table_html("allocation", tables["allocation"])),
        ("rounds", TITLES["rounds"], NOTES["rounds"], html.table_html("rounds", tables["rounds"])),
    ]  # fmt: skip
    if len(tables["convergence"]):
        svg = plots.convergence_plot(tables["convergence"])
        body = html.figure_html("convergence", svg, "best latency (ms) against trials")
        out.append(("convergence", TITLES["convergence"], NOTES["convergence"], body))
    if len(tables["estimate"]):
        svg = plots.estimate_plot(tables["estimate"])
        body = html.figure_html("estimate", svg, "after each scheduler round")
        body += html.table_html("estimate", tables["estimate"])
        out.append(("estimate", TITLES["estimate"], NOTES["estimate"], body))
    if "trend" in tables and len(tables["trend"]):
        body = html.figure_html("trend", plots.trend_plot(tables["trend"]), "per night")
        body += html.table_html("trend", tables["trend"])
        out.append(("trend", TITLES["trend"], NOTES["trend"], body))
    return out
