"""Reports of a tuning run: pandas tables first (per-layer latency and diagnosis, time
allocation, convergence, trend across nights), renderings second (CSV, markdown, one
self-contained HTML page with inline SVG plots).

    >>> from reports import build_report, report_tables, append_trend
    >>> build_report("out/2026-11-01")                       # doctest: +SKIP
    >>> append_trend("out/2026-11-01", "out/trend.csv")      # doctest: +SKIP

Layering (docs/architecture.md#layers): reads the run directory and the records database through
`compiler.records`, and the machine's peak through `compiler.measure.peak`; no
Prefect, no models/.
"""

from reports.build import build_report, report_tables
from reports.run import ReportError, load_run
from reports.trend import append_trend, trend_table

__all__ = [
    "ReportError",
    "append_trend",
    "build_report",
    "load_run",
    "report_tables",
    "trend_table",
]
