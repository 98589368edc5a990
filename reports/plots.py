"""The report's plots as inline SVG strings (matplotlib, Agg backend, no files, no links).

Each function takes report tables and returns one `<svg>` element ready to be
pasted into HTML: the XML prolog, DOCTYPE, metadata and namespace URLs are
stripped (inline SVG in HTML needs none of them), so the page names no
network address at all, and every plot gets its own id salt so the ids of
several plots on one page never collide.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

from compiler.measure.peak import Peak

WIDTH_IN, HEIGHT_IN = 7.5, 3.6

_STRIP = [
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*", re.DOTALL),
    re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
]


def svg_of(fig: plt.Figure, salt: str) -> str:
    """The figure as one inline <svg> element (text kept as text, ids salted)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    for pattern in _STRIP:
        text = pattern.sub("", text)
    text = text.replace("xlink:href=", "href=")
    return text.replace("<svg ", f'<svg class="plot" data-plot="{salt}" ', 1).strip()


def allocation_plot(allocation: pd.DataFrame) -> str:
    """Per task: share of the trials and of tuning time next to share of latency."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, max(2.0, 0.45 * len(allocation) + 1.2)))
    labels = [f"task {t}" for t in allocation["task_id"]]
    y = range(len(allocation))
    bars = [("budget_share", "trials"), ("time_share", "tuning time"),
            ("latency_share", "end-to-end latency")]  # fmt: skip
    for k, (col, label) in enumerate(bars):
        values = allocation[col].fillna(0.0).to_numpy()
        ax.barh([v + (k - 1) * 0.27 for v in y], values, height=0.27, label=label)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xlabel("share")
    ax.set_title("Where the tuning budget went, next to where the latency is")
    ax.legend(loc="lower right", fontsize="small")
    return svg_of(fig, "allocation")


def convergence_plot(curves: pd.DataFrame) -> str:
    """Best latency found against trials, one line per task (log scale)."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN))
    for task_id, rows in curves.groupby("task_id"):
        ax.step(rows["trial"], rows["best_s"] * 1e3, where="post", label=f"task {task_id}")
    if len(curves) and curves["best_s"].notna().any():
        ax.set_yscale("log")
    ax.set_xlabel("trials of the task")
    ax.set_ylabel("best latency (ms)")
    ax.set_title("Convergence per task")
    ax.legend(fontsize="small", ncol=2)
    return svg_of(fig, "convergence")


def estimate_plot(estimates: pd.DataFrame) -> str:
    """Estimated end-to-end latency against total trials and against wall time."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, HEIGHT_IN), sharey=True)
    left.plot(estimates["total_trials"], estimates["estimated_ms"], marker=".")
    right.plot(estimates["wall_s"], estimates["estimated_ms"], marker=".")
    left.set_xlabel("total trials")
    right.set_xlabel("wall time (s)")
    left.set_ylabel("estimated latency (ms)")
    fig.suptitle("Estimated end-to-end latency")
    return svg_of(fig, "estimate")


def latency_share_plot(layers: pd.DataFrame) -> str:
    """Each task's share of the end-to-end estimate (weight x latency)."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, max(2.0, 0.35 * len(layers) + 1.2)))
    labels = [f"task {t}: {ops[:28]}" for t, ops in zip(layers["task_id"], layers["ops"])]
    ax.barh(labels, layers["latency_share"].fillna(0.0))
    ax.invert_yaxis()
    ax.set_xlabel("share of the end-to-end estimate")
    ax.set_title("Latency share per task")
    return svg_of(fig, "latency-share")


def roofline_plot(layers: pd.DataFrame, peak: Peak) -> str:
    """Each task's GFLOP/s at its arithmetic intensity under the measured rooflines."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN))
    known = layers.dropna(subset=["gflops"])
    gflops, gbytes_s = peak.gflops, peak.gbytes_s
    lo = max(min(known["intensity"].min(), 0.1) / 2, 1e-3) if len(known) else 0.05
    hi = max(known["intensity"].max() * 2, 2 * gflops / gbytes_s) if len(known) else 100.0
    xs = [lo * (hi / lo) ** (k / 99) for k in range(100)]
    ax.plot(xs, [min(gflops, x * gbytes_s) for x in xs], color="gray", label="memory")
    if peak.cache_gbytes_s > 0:
        cached = [min(gflops, x * peak.cache_gbytes_s) for x in xs]
        ax.plot(xs, cached, color="gray", linestyle="--", label="cache-resident")
    ax.scatter(known["intensity"], known["gflops"], zorder=3)
    for row in known.itertuples(index=False):
        ax.annotate(f"{row.task_id}", (row.intensity, row.gflops), fontsize="small")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"Roofline: peak {gflops:.0f} GFLOP/s, {gbytes_s:.1f} GB/s memory")
    ax.legend(fontsize="small")
    return svg_of(fig, "roofline")


def trend_plot(trend: pd.DataFrame) -> str:
    """End-to-end latency per night (ours, onnxruntime, estimate)."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN))
    for col, label in [("latency_ms", "ours"), ("onnxruntime_latency_ms", "onnxruntime"),
                       ("estimated_ms", "estimate")]:  # fmt: skip
        values = pd.to_numeric(trend[col], errors="coerce")
        if values.notna().any():
            ax.plot(trend["date"], values, marker="o", label=label)
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency per night")
    ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return svg_of(fig, "trend")
