"""Headless Chromium (Debian's) driven by Playwright, as the dashboard tests use it."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.services import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def login(browser, base_url: str, username: str, password: str, viewport: dict | None = None):
    """A new page, logged in through the login form."""
    page = browser.new_context(viewport=viewport or {"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    page.csp_violations = watch_csp(page)
    page.goto(f"{base_url}/")
    assert page.url.startswith(f"{base_url}/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")
    return page


def wait_js(page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression until it is truthy.

    Playwright's ``wait_for_function`` compiles its predicate with ``eval`` inside the page,
    which the dashboard's Content Security Policy forbids — as it should; ``evaluate`` goes
    through the DevTools protocol instead.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression}")
        time.sleep(0.1)


def message_after(page, submit) -> str:
    """The flash message of the page a form submission lands on, read from that response.

    Read from the DOM instead, it can be gone before it is read: the experiment page reloads
    itself as soon as a What-if report it shows as pending is done, and on a loaded machine
    a small report is done before the page that announced it has finished loading.
    """
    with page.expect_navigation() as navigation:
        submit()
    body = navigation.value.text()
    found = re.search(r'<ul class="messages"[^>]*>(.*?)</ul>', body, re.DOTALL)
    assert found, f"no message on {navigation.value.url} ({navigation.value.status})"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def watch_csp(page) -> list[str]:
    """Collect Content Security Policy violations reported on the page's console."""
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return violations


def screenshot(page, name: str) -> Path:
    """A full-page screenshot of a page, or of one element when given a locator."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if hasattr(page, "evaluate_all"):  # a locator
        page.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=True)
    return path
