"""Headless Chromium for tests: Debian's /usr/bin/chromium driven by Playwright's sync API.

    from tests.support.browser import chromium_page

    def test_something(live_server):
        with chromium_page(artifacts="purchase") as browser:
            browser.page.goto(live_server.url)
            browser.shot("grid")          # test-artifacts/purchase/01-grid.png

Skips the test when Playwright or Chromium is missing (never downloads a browser).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class BrowserPage:
    page: Any  # playwright.sync_api.Page
    context: Any  # playwright.sync_api.BrowserContext
    browser: Any  # playwright.sync_api.Browser
    artifacts: Path | None
    shots: list[Path] = field(default_factory=list)
    page_timeout_ms: int = 15_000

    def shot(self, step: str) -> Path | None:
        """Save a full-page screenshot as NN-step.png, numbered in the order taken."""
        if self.artifacts is None:
            return None
        name = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.artifacts / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def new_page(self) -> Any:
        """Another tab in the same context (same cookies)."""
        page = self.context.new_page()
        page.set_default_timeout(self.page_timeout_ms)
        return page


@contextmanager
def chromium_page(
    *,
    artifacts: str | None = None,
    viewport: tuple[int, int] = (1280, 900),
    timeout_ms: int = 15_000,
) -> Iterator[BrowserPage]:
    """Launch Chromium, open one page; screenshots go to test-artifacts/<artifacts>/."""
    if not Path(CHROMIUM).exists():
        # `make test` installs it; in CI a missing browser is a failure, not a skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    folder = None
    if artifacts:
        folder = ARTIFACTS / artifacts
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("[0-9][0-9]-*.png"):
            old.unlink()
    # Playwright's sync API runs an event loop in this thread; Django would otherwise refuse
    # the test's own (synchronous) ORM calls as "async unsafe".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            try:
                yield BrowserPage(
                    page=page,
                    context=context,
                    browser=browser,
                    artifacts=folder,
                    page_timeout_ms=timeout_ms,
                )
            finally:
                context.close()
                browser.close()
                # Under Playwright's event loop the ORM opened a connection of its own.
                connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page() -> Iterator[BrowserPage]:
    """A fixture form for tests that do not need named artifacts."""
    with chromium_page() as browser:
        yield browser


def fill_shipping_address(page: Any, address: dict[str, str] | None = None) -> None:
    """Fill the hosted Checkout page's shipping address (goods sessions collect one)."""
    from tests.support.emulator import SHIPPING_ADDRESS

    for name, value in (address or SHIPPING_ADDRESS).items():
        selector = f"#{name}"
        if name == "shipping_country":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
