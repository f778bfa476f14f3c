"""What one webhook delivery costs: a fixed, small number of statements on the request's
side (record, queue) and on the worker's (claim, apply, finish; the queue's own per batch,
not per event), so that 16 senders get hundreds of events a second through
(bench/webhooks.py)."""

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


def test_the_worker_applies_product_updates_in_few_statements_each(database_queue, client):
    teapots = ProductFactory.create_batch(10, name="Teapot")
    for teapot in teapots:
        post(
            client,
            event(
                "product.updated",
                product(teapot.stripe_id, name="Blue teapot", default_price=teapot.price.stripe_id),
            ),
        )

    with CaptureQueriesContext(connection) as queries:
        call_command("shop_worker", "--batch", "--no-periodic")

    statements = [q["sql"] for q in queries if not is_transaction(q["sql"])]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert set(Product.objects.values_list("name", flat=True)) == {"Blue teapot"}
    # Each event: its claim (one UPDATE ... RETURNING the row), store's lock and save, its
    # outcome. The queue's are per batch, not per task: a look, the claim (SELECT FOR UPDATE
    # SKIP LOCKED, one UPDATE), the successes marked done together; and per run, the
    # worker's heartbeat row, its look for a dead worker's tasks, the live publish.
    assert len(statements) <= 4 * len(teapots) + 12, statements
