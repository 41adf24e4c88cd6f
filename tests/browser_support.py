"""Headless Chromium for the browser tests: Debian's ``chromium`` (``make test`` installs it),
driven by Playwright through ``executable_path`` (Playwright never downloads a browser here).

Screenshots are kept as test artifacts under ``var/screenshots/``."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"
PHONE_WIDTH = 390
NARROW_PHONE_WIDTH = 360
DESKTOP_WIDTH = 1280
WIDTHS = (PHONE_WIDTH, DESKTOP_WIDTH)
VIEWPORT_HEIGHT = 844
# The machine's network is closed: without these, Chromium's background fetches are refused by
# the dozen at every start. --no-sandbox because tests may run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium, or a skip that says how to get it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (make test installs it with apt)")
    return path


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium for a test module's pages."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def page_at(browser: Browser, width: int) -> Iterator[Page]:
    """A fresh browser context (no cookies) with a ``width`` px wide viewport."""
    context = browser.new_context(viewport={"width": width, "height": VIEWPORT_HEIGHT})
    try:
        yield context.new_page()
    finally:
        context.close()


def sideways_overflow(page: Page) -> int:
    """How many pixels the page is wider than its viewport (0: it does not scroll sideways)."""
    overflow: int = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def keep_screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``var/screenshots/{name}.png`` (a test artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
