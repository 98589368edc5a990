"""Renderings that are not HTML: readable display tables, CSV (+ parquet), markdown.

The CSV and parquet files hold the raw per-layer table (SI units: seconds,
FLOPs; shares as fractions). The display tables turn seconds into ms and
fractions into percents for people; markdown and HTML show those.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def _num(fmt: str) -> Callable[[object], str]:
    def show(v: object) -> str:
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return "" if v is None else str(v)
        return "" if math.isnan(x) else format(x, fmt)

    return show


def _scaled(factor: float, fmt: str) -> Callable[[object], str]:
    num = _num(fmt)
    return lambda v: num(float(v) * factor) if _is_number(v) else num(v)  # type: ignore[arg-type]


def _is_number(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


MS = _scaled(1e3, ".4g")
PCT = _scaled(100.0, ".1f")
X = _num(".2f")


def TEXT(v: object) -> str:
    return "" if v is None or pd.isna(v) else str(v)  # type: ignore[arg-type]


# column -> (header, formatter), per table; columns not listed are left out of displays
DISPLAY = {
    "layers": {
        "task_id": ("ID", TEXT), "ops": ("Fused ops", TEXT), "shapes": ("Shapes", TEXT),
        "weight": ("Weight", TEXT), "flops": ("MFLOP", _scaled(1e-6, ".4g")),
        "trials": ("Trials", TEXT), "latency_s": ("Latency (ms)", MS),
        "gflops": ("GFLOP/s", _num(".1f")), "peak_share": ("% of peak", PCT),
        "intensity": ("FLOP/byte", _num(".3g")), "roofline_share": ("% of roofline", PCT),
        "weighted_s": ("Weighted (ms)", MS), "latency_share": ("% of total", PCT),
        "speedup_vs_default": ("vs default", X), "network_s": ("Ours in network (ms)", MS),
        "onnxruntime_s": ("onnxruntime in network (ms)", MS),
        "onnxruntime_vs_ours": ("onnxruntime / ours", X),
        "onnxruntime_note": ("onnxruntime note", TEXT), "diagnosis": ("Diagnosis", TEXT),
    },
    "diagnosis": {
        "task_id": ("ID", TEXT), "ops": ("Fused ops", TEXT), "latency_share": ("% of total", PCT),
        "diagnosis": ("Diagnosis", TEXT), "evidence": ("Evidence", TEXT),
    },
    "allocation": {
        "task_id": ("ID", TEXT), "name": ("Task", TEXT), "rounds": ("Rounds", TEXT),
        "trials": ("Trials", TEXT), "budget_share": ("% of trials", PCT),
        "tuning_s": ("Tuning (s)", _num(".1f")), "time_share": ("% of time", PCT),
        "latency_share": ("% of latency", PCT), "budget_vs_latency": ("budget / latency", X),
    },
    "rounds": {
        "round": ("Round", TEXT), "task_id": ("Task", TEXT), "choice": ("Choice", TEXT),
        "trials": ("Trials", TEXT), "errors": ("Errors", TEXT),
        "search_s": ("Search (s)", _num(".2f")), "build_s": ("Build (s)", _num(".2f")),
        "measure_s": ("Measure (s)", _num(".2f")), "other_s": ("Other (s)", _num(".2f")),
        "wall_s": ("Wall (s)", _num(".1f")), "total_trials": ("Total trials", _num(".0f")),
        "task_best_s": ("Task best (ms)", MS), "estimated_ms": ("Estimate (ms)", _num(".4g")),
    },
    "estimate": {
        "round": ("Round", TEXT), "total_trials": ("Total trials", _num(".0f")),
        "wall_s": ("Wall (s)", _num(".1f")), "estimated_ms": ("Estimate (ms)", _num(".4g")),
    },
    "trend": None,  # every column, numbers to 4 significant digits
}  # fmt: skip


def display(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The table for people: chosen columns, readable headers, formatted strings."""
    spec = DISPLAY.get(name)
    if spec is None:
        return frame.apply(lambda col: col.map(_num(".4g") if col.dtype.kind in "fi" else TEXT))
    cols = [c for c in spec if c in frame]
    return pd.DataFrame({spec[c][0]: frame[c].map(spec[c][1]) for c in cols})


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of string cells (pipes escaped)."""

    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def write_csv(layers: pd.DataFrame, run_dir: Path) -> dict[str, Path]:
    """report.csv, and report.parquet when pyarrow is importable."""
    out = {"csv": run_dir / "report.csv"}
    layers.to_csv(out["csv"], index=False)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return out
    out["parquet"] = run_dir / "report.parquet"
    layers.to_parquet(out["parquet"], index=False)
    return out


def write_markdown(
    summary: dict, tables: dict[str, pd.DataFrame], titles: dict[str, str], path: Path
) -> Path:
    """report.md: the headline numbers, then every table under its title."""
    lines = [f"# Tuning report: {summary.get('model', '')}", ""]
    lines += [f"- {key}: {_headline(v)}" for key, v in summary.items()]
    for name, frame in tables.items():
        lines += ["", f"## {titles.get(name, name)}", ""]
        lines.append(markdown_table(display(name, frame)) if len(frame) else "(none)")
    path.write_text("\n".join(lines) + "\n")
    return path


def _headline(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else format(v, ".4g")
    return "" if v is None else str(v)
