"""Render the HTML report's charts to PNG files for docs/REPRODUCTION.md.

    python -m replay.images bench/results/replay.html docs/img

Needs Playwright (requirements-dev.txt) and Debian's Chromium (/usr/bin/chromium, or
MABDASH_CHROMIUM); it never downloads a browser.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def render(report: Path, directory: Path) -> list[Path]:
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
        names = ["cumulative", "timeline", "per-chunk"]
        for index, chart in enumerate(page.locator(".plotly-graph-div").all()):
            dataset = "census" if index < 3 else "fraud"
            path = directory / f"replay-{dataset}-{names[index % 3]}.png"
            chart.screenshot(path=str(path))
            written.append(path)
        browser.close()
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m replay.images REPORT.html DIRECTORY")
    for path in render(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"wrote {path}")
