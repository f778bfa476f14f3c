"""`sync_stripe` against a fake Stripe API that pages like the real one."""

import io
import json
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django.core.management import call_command

from store.models import Price, Product
from tests.factories import ProductFactory
from tests.support.stripe_events import price, product

pytestmark = pytest.mark.django_db


class FakeListAPI(stripe.HTTPClient):
    """Serves `GET /v1/products` and `/v1/prices` in pages, via the SDK's own paging, with
    Stripe's `active` filter: prices are listed active only unless `active=false` is asked
    (products, all unless filtered)."""

    name = "fake"

    def __init__(self, products, prices):
        super().__init__()
        self.objects = {"/v1/products": products, "/v1/prices": prices}
        self.pages_served = 0

    def request(self, method, url, headers, post_data=None):
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        objects = self.objects[parts.path]
        active = query.get("active", "true" if parts.path == "/v1/prices" else None)
        if active is not None:
            objects = [o for o in objects if o["active"] == (active == "true")]
        start = 0
        if "starting_after" in query:
            start = next(i for i, o in enumerate(objects) if o["id"] == query["starting_after"]) + 1
        limit = int(query.get("limit", 10))
        page = objects[start : start + limit]
        self.pages_served += 1
        body = {
            "object": "list",
            "url": parts.path,
            "has_more": start + limit < len(objects),
            "data": page,
        }
        return json.dumps(body), 200, {}


@pytest.fixture
def fake_stripe(settings):
    products = [product(f"prod_{i:03d}", name=f"Thing {i}") for i in range(250)]
    products[0]["active"] = False
    prices = [price(f"price_{i:03d}", f"prod_{i:03d}", unit_amount=100 + i) for i in range(250)]
    api = FakeListAPI(products, prices)
    client = stripe.StripeClient("sk_test_fake", http_client=api)
    with mock.patch("payments.stripe_api.client", return_value=client):
        yield api


@pytest.fixture
def frozen_clock():
    """Both runs in one second: a listing is current state, so no re-read is needed."""
    with mock.patch("payments.management.commands.sync_stripe.time") as clock:
        clock.time.return_value = 1_800_000_000
        yield


def test_sync_pages_through_everything_and_second_run_changes_nothing(fake_stripe, frozen_clock):
    stale = ProductFactory(stripe_id="prod_gone", name="Deleted in Stripe")
    out = io.StringIO()

    call_command("sync_stripe", stdout=out)

    # 3 pages of 100 for each of the two lists, and one (empty) of archived prices
    assert fake_stripe.pages_served == 7
    assert Product.objects.exclude(stripe_id="prod_gone").count() == 250
    assert Product.objects.visible().count() == 249
    assert Product.objects.get(stripe_id="prod_042").price.unit_amount == 142
    stale.refresh_from_db()
    assert stale.active is False
    assert "[##############################] 250/250" in out.getvalue()
    assert "500 created" in out.getvalue() and "1 archived" in out.getvalue()

    again = io.StringIO()
    call_command("sync_stripe", stdout=again)

    assert "0 created, 0 updated, 500 unchanged, 0 archived" in again.getvalue()


def test_a_price_archived_while_the_shop_was_not_listening_is_archived_here(
    fake_stripe, frozen_clock
):
    """Stripe lists only active prices unless asked for the others: a listing that did not
    ask would never see this one go."""
    call_command("sync_stripe", stdout=io.StringIO())
    assert Product.objects.visible().filter(stripe_id="prod_007").exists()
    archived = next(p for p in fake_stripe.objects["/v1/prices"] if p["id"] == "price_007")
    archived["active"] = False

    call_command("sync_stripe", stdout=io.StringIO())

    assert Price.objects.get(stripe_id="price_007").active is False
    assert not Product.objects.visible().filter(stripe_id="prod_007").exists()
