"""What one webhook delivery costs: a fixed, small number of statements on the request's
side (record, queue) and on the worker's (claim, apply, finish), so that 16 senders get
hundreds of events a second through (bench/webhooks.py)."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import StripeEvent
from store.models import Product
from tests.factories import ProductFactory
from tests.support.stripe_events import event, product, sign

pytestmark = pytest.mark.django_db(transaction=True)  # the worker closes connections


@pytest.fixture
def database_queue(settings):
    """The production backend: tasks are rows, run by the worker."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}


def post(client, payload: dict) -> tuple[int, list[str]]:
    body = json.dumps(payload).encode()
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/stripe/webhook/",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": sign(body)},
        )
    return response.status_code, [q["sql"] for q in queries if not is_transaction(q["sql"])]


def is_transaction(sql: str) -> bool:
    return sql.split(" ")[0] in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}


def test_the_webhook_records_and_queues_a_new_event_in_two_statements(database_queue, client):
    teapot = ProductFactory(name="Teapot")
    payload = event("product.updated", product(teapot.stripe_id, name="Blue teapot"))

    status, statements = post(client, payload)
    again, duplicate = post(client, payload)

    assert status == again == HTTPStatus.OK
    assert [s.split(" ")[0] for s in statements] == ["INSERT", "INSERT"], statements
    assert len(duplicate) <= 3, duplicate  # the row there, and a harmless task
    assert StripeEvent.objects.get().status == StripeEvent.Status.RECEIVED


def test_the_worker_applies_a_product_update_in_few_statements(database_queue, client):
    teapot = ProductFactory(name="Teapot")
    payload = event(
        "product.updated",
        product(teapot.stripe_id, name="Blue teapot", default_price=teapot.price.stripe_id),
    )
    post(client, payload)

    with CaptureQueriesContext(connection) as queries:
        call_command("db_worker", batch=True, max_tasks=1, startup_delay=False, verbosity=0)

    statements = [q["sql"] for q in queries if not is_transaction(q["sql"])]
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert Product.objects.get(pk=teapot.pk).name == "Blue teapot"
    # The queue's own 3 (take, claim, done); the event's 3 (read, claim, done); store's 2
    # (lock, save); the live publish (NOTIFY, or the SQLite change log), one per topic.
    assert len(statements) <= 10, statements
