import json
import threading
import time
from datetime import timedelta
from http import HTTPStatus
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from payments.models import StripeEvent
from store.models import Product
from tests.support import stripe_events as se
from tests.support.stripe_events import event, product

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


def test_unknown_event_type_is_recorded_as_ignored(webhook):
    payload = event("customer.created", {"id": "cus_1", "object": "customer"})

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.OK
    assert StripeEvent.objects.get().status == StripeEvent.Status.IGNORED


def test_handler_failure_answers_500_then_replay_applies_it(webhook):
    payload = event("product.created", product("prod_A", name="Teapot"))
    with mock.patch(  # after the product's INSERT, within its transaction
        "store.services.live.publish_on_commit", side_effect=RuntimeError("database hiccup")
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


def test_an_event_a_dead_worker_held_is_run_again_on_redelivery(webhook):
    payload = event("product.created", product("prod_stale", name="Teapot"))
    # The worker dies in the middle of the handler (SystemExit is no Exception to record).
    with mock.patch("store.services.live.publish_on_commit", side_effect=SystemExit):
        webhook.post(payload)
    StripeEvent.objects.update(claimed_at=timezone.now() - timedelta(minutes=10))
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSING

    response = webhook.post(payload)  # Stripe delivers it again

    assert response.status_code == HTTPStatus.OK
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert Product.objects.get(stripe_id="prod_stale").name == "Teapot"


def test_a_worker_whose_stale_claim_was_taken_over_leaves_the_outcome_alone(db, monkeypatch):
    from payments import webhooks

    record = webhooks.stripe_event_record(event=event("product.created", product("prod_late")))
    calls: list[str] = []

    def handler(obj, created):
        calls.append(obj["id"])
        if len(calls) == 1:  # the first worker stalls past STALE_CLAIM; a second one takes over
            StripeEvent.objects.filter(pk=record.pk).update(
                claimed_at=timezone.now() - timedelta(minutes=10)
            )
            second = webhooks.stripe_event_process(record=StripeEvent.objects.get(pk=record.pk))
            assert second.status == StripeEvent.Status.PROCESSED
            raise RuntimeError("the first worker fails, late")

    monkeypatch.setitem(webhooks.HANDLERS, "product.created", handler)

    first = webhooks.stripe_event_process(record=record)

    assert calls == ["prod_late", "prod_late"]
    assert first.status == StripeEvent.Status.PROCESSED  # the row's word, not the late failure
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
