"""Applying Stripe's catalog (store/services.py), driven as Stripe drives it: signed webhooks.

Events come in any order; each product and price applies only what is newer than what it
has, and a same-second tie is settled by re-reading the object from Stripe (payments).
"""

import time
from http import HTTPStatus
from unittest import mock

import pytest

from payments.models import StripeEvent
from store import services
from store.models import Price, Product
from store.services import Applied
from tests.support import stripe_events as se
from tests.support.stripe_events import event, price, product

pytestmark = pytest.mark.django_db


def test_older_product_update_changes_nothing(webhook):
    now = int(time.time())
    webhook.post(event("product.updated", product("prod_A", name="New"), created=now))

    response = webhook.post(
        event("product.updated", product("prod_A", name="Old"), created=now - 60)
    )

    assert response.status_code == HTTPStatus.OK
    assert Product.objects.get().name == "New"


def test_same_second_events_defer_to_stripes_current_state(webhook):
    now = int(time.time())
    webhook.post(event("product.updated", product("prod_A", name="v2"), created=now))
    current = product("prod_A", name="v3")

    with mock.patch("payments.stripe_api.product_current", return_value=current) as fetch:
        # v1 was sent before v2 in the same second but arrives after it: order unknown.
        response = webhook.post(event("product.updated", product("prod_A", name="v1"), created=now))

    assert response.status_code == HTTPStatus.OK
    fetch.assert_called_once_with("prod_A")
    assert Product.objects.get().name == "v3"


def test_price_before_product_ends_like_product_before_price(webhook):
    now = int(time.time())
    webhook.post(event("price.created", price("price_1", "prod_A", unit_amount=900), created=now))
    assert not Product.objects.visible().exists()

    webhook.post(
        event(
            "product.created",
            product("prod_A", name="Teapot", default_price="price_1"),
            created=now - 5,
        )
    )

    teapot = Product.objects.visible().get()
    assert (teapot.name, teapot.price.stripe_id, teapot.price.unit_amount) == (
        "Teapot",
        "price_1",
        900,
    )


def test_deleted_product_leaves_the_grid_and_a_later_price_update_does_not_revive_it(
    webhook, client
):
    now = int(time.time())
    webhook.post(event("product.created", product("prod_A", name="Teapot"), created=now - 10))
    webhook.post(event("price.created", price("price_1", "prod_A"), created=now - 10))
    assert b"Teapot" in client.get("/").content

    webhook.post(
        event(
            "product.deleted", {"id": "prod_A", "object": "product", "deleted": True}, created=now
        )
    )
    webhook.post(event("price.updated", price("price_1", "prod_A", unit_amount=1), created=now + 1))

    teapot = Product.objects.get(stripe_id="prod_A")
    assert (teapot.active, teapot.deleted, teapot.name) == (False, True, "Teapot")
    assert b"Teapot" not in client.get("/").content
    assert Price.objects.get().unit_amount == 1


def test_archived_price_falls_back_to_another_active_price(webhook):
    now = int(time.time())
    webhook.post(event("product.created", product("prod_A", default_price="price_1")))
    price_1 = price("price_1", "prod_A", unit_amount=100, created=1)
    webhook.post(event("price.created", price_1, created=now - 10))
    webhook.post(event("price.created", price("price_2", "prod_A", unit_amount=200, created=2)))

    webhook.post(event("price.updated", price_1 | {"active": False}, created=now))

    assert Product.objects.get().price.stripe_id == "price_2"


@pytest.mark.parametrize(
    "name",
    [
        "product.created.json",
        "product.updated.json",
        "product.deleted.json",
        "price.created.json",
        "price.updated.json",
    ],
)
def test_shared_catalog_payloads_are_applied(webhook, name):
    payload = se.load_shared(name)
    payload["created"] = int(time.time())
    obj = payload["data"]["object"]

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.OK
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    if obj["object"] == "product":
        row = Product.objects.get(stripe_id=obj["id"])
        assert row.name == obj["name"]
        assert row.active is (obj["active"] and name != "product.deleted.json")
    else:
        row = Price.objects.get(stripe_id=obj["id"])
        assert (row.unit_amount, row.currency) == (obj["unit_amount"], obj["currency"])
        assert row.product.stripe_id == obj["product"]


def test_a_same_second_tie_changes_nothing_and_asks_for_the_current_object():
    now = int(time.time())
    services.product_upsert_from_stripe(obj=product("prod_A", name="v2"), event_created=now)

    tie = services.product_upsert_from_stripe(obj=product("prod_A", name="v1"), event_created=now)
    applied = services.product_upsert_from_stripe(
        obj=product("prod_A", name="v3"), event_created=now, current=True
    )

    assert tie == Applied.NEEDS_CURRENT
    assert applied == Applied.UPDATED
    assert Product.objects.get().name == "v3"


def test_same_second_price_events_defer_to_stripes_current_price(webhook):
    now = int(time.time())
    webhook.post(event("price.created", price("price_1", "prod_A", unit_amount=100), created=now))
    current = price("price_1", "prod_A", unit_amount=300)

    with mock.patch("payments.stripe_api.price_current", return_value=current) as fetch:
        response = webhook.post(
            event("price.updated", price("price_1", "prod_A", unit_amount=200), created=now)
        )

    assert response.status_code == HTTPStatus.OK
    fetch.assert_called_once_with("price_1")
    assert Price.objects.get().unit_amount == 300
