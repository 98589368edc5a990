"""report.html in a real headless browser (Debian's chromium driven by Playwright, no
download): every plot renders with a non-zero size and the console shows no error."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from test_reports_fixture import PEAK, run_copy

from reports import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as the machine notes say: no sandbox as root, and nothing reaching for a network
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def test_every_plot_renders_and_the_console_has_no_error(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    run = run_copy(tmp_path / "run")
    page_path = build_report(run, peak=PEAK)["html"]
    problems: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            sizes = page.evaluate(
                """() => [...document.querySelectorAll('figure')].map(f => {
                    const svg = f.querySelector('svg');
                    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                    const drawn = svg ? svg.querySelectorAll('path, use, text').length : 0;
                    return [f.id, box.width, box.height, drawn];
                })"""
            )
            tables = page.evaluate("() => document.querySelectorAll('table').length")
        finally:
            context.close()
    assert {s[0] for s in sizes} >= {"plot-latency-share", "plot-roofline", "plot-allocation",
                                     "plot-convergence", "plot-estimate"}  # fmt: skip
    for plot_id, width, height, drawn in sizes:
        assert width > 100 and height > 50 and drawn > 10, (plot_id, width, height, drawn)
    assert tables >= 4
    assert problems == []
    assert requests == [page_path.as_uri()]  # the page itself and nothing else
