"""Helpers for the cached pages (LIVE_GRID_CACHE) and their per-visitor header."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from django.test import Client

from live.broker import get_broker
from pagecache.cache import forget_all
from pagecache.changes import changes
from tests.factories import ProductFactory
from tests.support.emulator import wait_until

COUNT = re.compile(r'<span id="cart-count"[^>]*>(\d+)</span>')


def cache_on(settings: Any) -> None:
    """Page caches and memos on, and empty (nothing cached by an earlier test)."""
    settings.LIVE_GRID_CACHE = True
    forget_all()


def settle() -> None:
    """Wait until this process's dispatcher has heard back what was published so far (a
    channel delivers in order: a probe sent now arrives after them). Each echo of a cart or
    session change drops the memo once more; a query count measured after this is exact."""
    before = changes.changed_at("probe", 1)
    get_broker().send([1], "probe")
    wait_until(lambda: changes.changed_at("probe", 1) > before, timeout=10)


def count_on(client: Client, url: str = "/") -> int:
    """The header's cart count on that page."""
    response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    found = COUNT.search(response.content.decode())
    assert found is not None
    return int(found.group(1))


def post(client: Client, url: str, **data: Any) -> None:
    """A form POST with the client's token, then the page that shows (and so clears) its
    flash message: a full render."""
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    response = client.post(url, data)
    assert response.status_code in {HTTPStatus.FOUND, HTTPStatus.SEE_OTHER}, response
    client.get("/")


def returning_shopper(client: Client) -> Client:
    """`client` with a Mug (2) and a Cup (1) in its cart, its header memoised; the products
    as `client.cups`."""
    mug = ProductFactory.create(name="Mug", stock=9)
    cup = ProductFactory.create(name="Cup", stock=9)
    client.get("/")
    post(client, "/cart/add/", product=mug.pk, quantity=2)
    post(client, "/cart/add/", product=cup.pk, quantity=1)
    settle()
    client.get(f"/products/{mug.pk}/")
    client.cups = (mug, cup)  # type: ignore[attr-defined]
    assert count_on(client) == 3
    return client
