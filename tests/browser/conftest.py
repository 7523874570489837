"""A real headless Chromium (Debian's package) driven by Playwright, for page tests.

Playwright's own browser builds are never downloaded: it runs /usr/bin/chromium. In CI a
missing browser is a failure, not a skip (scripts/test.sh installs it)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("SYNCD_TEST_CHROMIUM", "/usr/bin/chromium"))

# The flags keep Chromium off the network it would otherwise try to reach at start
# (component updates, sync, background fetches): this machine has no internet.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test worker."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - environment failure
        missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing is None and not CHROMIUM.exists():
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium; make test does it)"
    if missing is not None:  # pragma: no cover - environment failure
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need a real browser: {missing}")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies, no cache) and page for one test."""
    context = browser.new_context(locale="en-GB")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
