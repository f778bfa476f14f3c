"""Two real browser pages: a change in between shows up on both without a reload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from store import live
from store.models import Product
from tests.factories import ProductFactory
from tests.live.test_stream import rename
from tests.support.browser import BrowserPage, chromium_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def browser() -> Iterator[BrowserPage]:
    with chromium_page(artifacts="live") as browser:
        yield browser


def open_live(browser, url: str):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = browser.new_page()
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
