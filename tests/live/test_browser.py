"""Two real browser pages: a change in between shows up on both without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections, transaction

from store import live
from store.models import Product
from tests.factories import ProductFactory
from tests.live.test_stream import rename

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

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


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    # Playwright's sync API runs an event loop in this thread; our ORM calls stay sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # Under Playwright's loop the ORM used its own connection: do not leak it.
            connections.close_all()


def open_live(browser, url: str):  # type: ignore[no-untyped-def]
    expect = pytest.importorskip("playwright.sync_api").expect
    page = browser.new_page()
    page.set_default_timeout(10_000)
    page.goto(url)
    expect(page.locator("[data-live-state=open]")).to_have_count(1)
    page.evaluate("window.notReloaded = true")
    return page


def test_other_pages_follow_a_webhook_and_a_sale_without_reload(browser, live_server, webhook):
    expect = pytest.importorskip("playwright.sync_api").expect
    teapot = ProductFactory(name="Teapot", stock=3)
    ProductFactory(name="Mug", stock=9)
    grid = open_live(browser, f"{live_server.url}/")
    detail = open_live(browser, f"{live_server.url}/products/{teapot.pk}/")
    card = grid.locator(f"#product-{teapot.pk}")

    rename(webhook, teapot, "Blue teapot")
    with transaction.atomic():  # the last units sold
        Product.objects.filter(pk=teapot.pk).update(stock=0)
        live.publish_on_commit([teapot.pk])

    expect(card.locator("[data-field=name]")).to_have_text("Blue teapot")
    expect(card.locator(".stock")).to_have_attribute("data-available", "0")
    expect(card.locator("button")).to_be_disabled()
    expect(card.locator("button")).to_have_text("Sold out")
    expect(detail.locator("h1[data-field=name]")).to_have_text("Blue teapot")
    expect(detail.locator(".stock")).to_have_attribute("data-available", "0")
    expect(detail.locator("form button")).to_be_disabled()
    # The swapped-in form carries this page's CSRF token for the no-htmx fallback.
    token = card.locator("input[name=csrfmiddlewaretoken]")
    assert token.get_attribute("value")
    assert grid.evaluate("window.notReloaded") is True
    assert detail.evaluate("window.notReloaded") is True


def test_grid_inserts_a_new_product_and_removes_an_archived_one(browser, live_server, webhook):
    expect = pytest.importorskip("playwright.sync_api").expect
    mug = ProductFactory(name="Mug")
    grid = open_live(browser, f"{live_server.url}/")

    kettle = ProductFactory(name="Kettle")
    live.publish([kettle.pk])
    rename(webhook, mug, "Mug", active=False)

    expect(grid.locator(f"#product-{mug.pk}")).to_have_count(0)
    expect(grid.locator("#product-grid > li")).to_have_count(1)
    expect(grid.locator(f"#product-{kettle.pk} [data-field=name]")).to_have_text("Kettle")
    assert grid.evaluate("window.notReloaded") is True
