import json
import threading
import time
from http import HTTPStatus
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from payments.models import StripeEvent
from store.models import Price, Product
from tests.support import stripe_events as se
from tests.support.stripe_events import event, price, product

pytestmark = pytest.mark.django_db


def test_signed_product_created_is_applied(webhook):
    payload = event("product.created", product("prod_A", name="Teapot", images=["/t.svg"]))

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.OK
    teapot = Product.objects.get(stripe_id="prod_A")
    assert (teapot.name, teapot.images, teapot.active) == ("Teapot", ["/t.svg"], True)
    record = StripeEvent.objects.get(stripe_id=payload["id"])
    assert record.status == StripeEvent.Status.PROCESSED
    assert record.processed_at is not None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Stripe-Signature": "t=1,v1=deadbeef"}, id="forged"),
        pytest.param({"Stripe-Signature": "garbage"}, id="malformed"),
        pytest.param({}, id="missing"),
    ],
)
def test_bad_signatures_are_rejected_and_nothing_applied(client, headers):
    body = json.dumps(event("product.created", product("prod_A"))).encode()

    response = client.post(
        "/stripe/webhook/", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Product.objects.exists()
    assert not StripeEvent.objects.exists()


def test_wrong_secret_is_rejected(webhook):
    response = webhook.post(event("product.created", product("prod_A")), secret="whsec_other")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Product.objects.exists()


def test_stale_timestamp_is_rejected(webhook):
    response = webhook.post(
        event("product.created", product("prod_A")), timestamp=int(time.time()) - 301
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"no": "id"}',
        b'{"id": 5, "type": "product.created"}',
        b'{"id": "evt_1", "type": "product.created", "created": "yesterday"}',
        b'{"id": "evt_1", "type": "product.created", "created": 1, "data": []}',
    ],
)
def test_garbage_body_with_valid_signature_is_rejected(webhook, body):
    response = webhook.post(body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not StripeEvent.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get("/stripe/webhook/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_duplicate_delivery_is_ok_and_changes_nothing(webhook):
    payload = event("product.created", product("prod_A", name="Teapot"))
    webhook.post(payload)
    Product.objects.filter(stripe_id="prod_A").update(name="Edited locally")

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.OK
    assert StripeEvent.objects.count() == 1
    assert Product.objects.get().name == "Edited locally"


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


def test_unknown_event_type_is_recorded_as_ignored(webhook):
    payload = event("customer.created", {"id": "cus_1", "object": "customer"})

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.OK
    assert StripeEvent.objects.get().status == StripeEvent.Status.IGNORED


def test_handler_failure_answers_500_then_replay_applies_it(webhook):
    payload = event("product.created", product("prod_A", name="Teapot"))
    with mock.patch(
        "store.services._product_refresh_price", side_effect=RuntimeError("database hiccup")
    ):
        response = webhook.post(payload)

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    record = StripeEvent.objects.get()
    assert record.status == StripeEvent.Status.FAILED
    assert "database hiccup" in record.error
    assert not Product.objects.exists()  # nothing half-applied

    call_command("replay_stripe_events")

    record.refresh_from_db()
    assert record.status == StripeEvent.Status.PROCESSED
    assert Product.objects.get().name == "Teapot"


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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_copies_at_once_are_applied_once():
    payload = event("product.created", product("prod_A", name="Teapot"))
    body = json.dumps(payload).encode()
    barrier = threading.Barrier(2)
    statuses = []

    def deliver():
        try:
            barrier.wait()
            response = Client().post(
                "/stripe/webhook/",
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": se.sign(body)},
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [HTTPStatus.OK, HTTPStatus.OK]
    record = StripeEvent.objects.get()
    assert (record.status, record.attempts) == (StripeEvent.Status.PROCESSED, 1)
    assert Product.objects.count() == 1
