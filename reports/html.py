"""report.html: one self-contained page (inline CSS and SVG; no script, font, image or link
to anything outside the file), so it opens offline in any browser."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from reports.render import display

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 12.5px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; vertical-align: top;
         white-space: nowrap; }
th { background: #f3f3f3; }
#table-diagnosis td:last-child { text-align: left; white-space: normal; min-width: 30em; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dl.summary dt { font-weight: 600; } dl.summary dd { margin: 0; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
figcaption, p.note { color: #555; font-size: 12.5px; max-width: 60em; }
.scroll { overflow-x: auto; }
"""


def table_html(name: str, frame: pd.DataFrame) -> str:
    """One display table as an HTML <table id="table-NAME">."""
    if frame.empty:
        return f'<p class="note" id="table-{name}">(none)</p>'
    shown = display(name, frame)
    return shown.to_html(index=False, escape=True, border=0, table_id=f"table-{name}")


def summary_html(summary: dict) -> str:
    items = []
    for key, value in summary.items():
        text = "" if value is None else (f"{value:.4g}" if isinstance(value, float) else value)
        items.append(f"<dt>{html.escape(key)}</dt><dd>{html.escape(str(text))}</dd>")
    return '<dl class="summary">' + "".join(items) + "</dl>"


def page(
    *,
    summary: dict,
    sections: list[tuple[str, str, str, str]],
) -> str:
    """The whole page. `sections`: (name, title, description, body html) in order."""
    title = html.escape(f"Tuning report: {summary.get('model', '')}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        summary_html(summary),
    ]
    for name, heading, description, body in sections:
        parts.append(f'<section id="{html.escape(name)}"><h2>{html.escape(heading)}</h2>')
        if description:
            parts.append(f'<p class="note">{html.escape(description)}</p>')
        parts.append(f'<div class="scroll">{body}</div></section>')
    parts.append("</body></html>")
    return "\n".join(parts)


def figure_html(name: str, svg: str, caption: str) -> str:
    return (
        f'<figure id="plot-{html.escape(name)}">{svg}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def write_html(text: str, path: Path) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
