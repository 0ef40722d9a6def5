"""Render the HTML report's charts to PNG files for docs/REPRODUCTION.md.

    python -m replay.images bench/results/replay.html docs/img '*-request-regret'

Every chart whose id matches one of the patterns (default: the request-level regret
and horizon charts, the ones the document shows) becomes ``replay-<id>.png``. Needs Playwright
(requirements-dev.txt) and Debian's Chromium (/usr/bin/chromium, or MABDASH_CHROMIUM); it
never downloads a browser.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path

DEFAULT_PATTERNS = ("*-request-regret", "*-request-horizon")


def render(report: Path, directory: Path, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> list[Path]:
    from playwright.sync_api import sync_playwright

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("MABDASH_CHROMIUM", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(report.resolve().as_uri())
        page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length > 0")
        for chart in page.locator(".plotly-graph-div").all():
            chart_id = chart.get_attribute("id") or ""
            if any(fnmatch.fnmatch(chart_id, pattern) for pattern in patterns):
                path = directory / f"replay-{chart_id}.png"
                chart.screenshot(path=str(path))
                written.append(path)
        browser.close()
    return written


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit("usage: python -m replay.images REPORT.html DIRECTORY [PATTERN …]")
    for path in render(Path(sys.argv[1]), Path(sys.argv[2]), tuple(sys.argv[3:]) or DEFAULT_PATTERNS):
        print(f"wrote {path}")
