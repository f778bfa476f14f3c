"""The background queue: work leaves the request, commits with its reason, retries, and a
frozen Stripe holds no lock that the rest of the shop waits for."""

from __future__ import annotations

import json
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from unittest import mock

import pytest
import requests
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django_tasks_db.models import DBTaskResult

from payments import fulfilment, stripe_api, tasks
from payments.emails import order_email
from payments.models import Order, StripeEvent
from payments.queue import periodic_next
from tests.factories import ProductFactory
from tests.support.emulator import wait_until
from tests.support.orders import paid_session, pending_order
from tests.support.stripe_events import event, sign
from tests.support.tasks import DEFERRED, run_deferred

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}


@pytest.fixture
def database_queue(settings):
    """The production backend: tasks are rows, run by `shop_worker`."""
    settings.TASKS = DATABASE_QUEUE


@pytest.mark.django_db(transaction=True)  # the worker closes and reopens connections
def test_an_email_is_queued_in_its_transaction_and_sent_by_the_worker(database_queue):
    order = pending_order((ProductFactory(), 1), email="shopper@example.com")
    with transaction.atomic():
        order_email(order=order, template="order_confirmation")
        queued_inside = DBTaskResult.objects.count()

    call_command("shop_worker", "--batch")

    assert queued_inside == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["shopper@example.com"]


@pytest.mark.django_db
def test_a_rolled_back_change_sends_no_email(database_queue):
    order = pending_order((ProductFactory(), 1), email="shopper@example.com")

    with pytest.raises(RuntimeError), transaction.atomic():
        order_email(order=order, template="order_confirmation")
        raise RuntimeError("the order was never paid")

    assert not DBTaskResult.objects.filter(task_path__endswith="order_email_send").exists()


@pytest.mark.django_db(transaction=True)
def test_a_broken_mail_server_is_retried_with_back_off(settings, database_queue):
    settings.TASK_RETRY_BASE_SECONDS = 60
    order = pending_order((ProductFactory(), 1), email="shopper@example.com")
    order_email(order=order, template="order_confirmation")

    with mock.patch(
        "django.core.mail.backends.locmem.EmailBackend.send_messages",
        side_effect=smtplib.SMTPServerDisconnected("gone"),
    ):
        call_command("shop_worker", "--batch")

    retry = DBTaskResult.objects.get(task_path__endswith="order_email_send", status="READY")
    assert retry.args_kwargs["kwargs"]["attempt"] == 2
    assert 50 < (retry.run_after - retry.enqueued_at).total_seconds() <= 61
    assert not mail.outbox


@pytest.mark.django_db
def test_retries_give_up_after_the_last_attempt(settings):
    settings.TASK_MAX_ATTEMPTS = 3
    order = pending_order((ProductFactory(), 1), email="shopper@example.com")

    with mock.patch(
        "django.core.mail.backends.locmem.EmailBackend.send_messages",
        side_effect=smtplib.SMTPServerDisconnected("gone"),
    ):
        order_email(order=order, template="order_confirmation")
        while run_deferred():
            pass

    assert not DEFERRED
    assert not mail.outbox


@pytest.mark.django_db
def test_the_webhook_only_records_and_queues(database_queue, client):
    order = pending_order((ProductFactory(stock=3), 1))
    body = json.dumps(event("checkout.session.completed", paid_session(order))).encode()

    with mock.patch("payments.stripe_api.checkout_session_retrieve") as retrieve:
        response = client.post(
            "/stripe/webhook/",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": sign(body)},
        )

    assert response.status_code == HTTPStatus.OK
    retrieve.assert_not_called()  # Stripe is asked by the worker, not in the request
    assert StripeEvent.objects.get().status == StripeEvent.Status.RECEIVED
    assert DBTaskResult.objects.filter(task_path__endswith="stripe_event_handle").count() == 1


@pytest.fixture
def frozen_stripe(settings) -> Iterator[str]:
    """An API base that accepts connections and never answers, as a hung Stripe would."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{listener.getsockname()[1]}"
    yield settings.STRIPE_API_BASE
    listener.close()


@pytest.mark.django_db(transaction=True)
def test_a_frozen_stripe_mid_fulfilment_slows_no_other_shopper(live_server, frozen_stripe) -> None:
    products = [ProductFactory.create(stock=50) for _ in range(4)]
    order = pending_order((products[0], 1))
    body = json.dumps(event("checkout.session.completed", paid_session(order))).encode()
    webhook = threading.Thread(
        target=requests.post,
        args=(f"{live_server.url}/stripe/webhook/",),
        kwargs={
            "data": body,
            "headers": {"Stripe-Signature": sign(body), "Content-Type": "application/json"},
            "timeout": 60,
        },
        daemon=True,
    )
    webhook.start()
    wait_until(  # the handler is running, asking the frozen Stripe
        lambda: StripeEvent.objects.filter(status=StripeEvent.Status.PROCESSING).exists(),
        timeout=10,
        message="the webhook never reached its handler",
    )
    answers: list[int] = []

    def shopper(product_pk: int) -> None:
        http = requests.Session()
        http.get(live_server.url + "/", timeout=30)
        token = http.cookies["csrftoken"]
        assert token is not None
        answer = http.post(
            f"{live_server.url}/cart/add/",
            data={"product": product_pk, "quantity": 1},
            headers={"X-CSRFToken": token, "Referer": live_server.url + "/"},
            timeout=30,
        )
        answers.append(answer.status_code)

    started = time.monotonic()
    shoppers = [threading.Thread(target=shopper, args=(products[i % 4].pk,)) for i in range(20)]
    for thread in shoppers:
        thread.start()
    for thread in shoppers:
        thread.join()
    elapsed = time.monotonic() - started

    assert sorted(set(answers)) == [HTTPStatus.OK], answers
    assert elapsed < 15
    assert webhook.is_alive()  # still waiting for Stripe: it held no lock meanwhile
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


@pytest.mark.django_db
def test_fulfilment_queues_the_confirmation_instead_of_sending_it(database_queue):
    order = pending_order((ProductFactory(stock=2), 1), email="shopper@example.com")

    with mock.patch(
        "payments.stripe_api.checkout_session_retrieve", return_value=paid_session(order)
    ):
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    queued = DBTaskResult.objects.get(task_path__endswith="order_email_send")
    assert queued.args_kwargs["kwargs"] == {
        "order_id": order.pk,
        "template": "order_confirmation",
        "subject": f"Your Amazin order #{order.pk}",
        "refund_id": None,
    }
    assert not mail.outbox


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # two connections: each sees what the other commits
def test_two_workers_starting_together_start_one_chain_of_a_periodic_task(database_queue):
    task = tasks.money_look_periodic
    other = threading.Thread(target=periodic_start_elsewhere, args=(task,))
    using = type(task).using

    def other_starts_meanwhile(self, **kwargs):  # the first has found none waiting; then:
        if threading.current_thread() is threading.main_thread() and not other.ident:
            other.start()
            wait_until(lambda: not other.is_alive() or waits_on_a_lock(), timeout=120)
        return using(self, **kwargs)

    with mock.patch.object(type(task), "using", other_starts_meanwhile):
        periodic_next(task, every=0)
        other.join(timeout=120)

    assert DBTaskResult.objects.filter(task_path=task.module_path).count() == 1


def periodic_start_elsewhere(task) -> None:
    """Another worker starting, on a connection of its own."""
    try:
        periodic_next(task, every=0)
    finally:
        connection.close()


def waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db
def test_stripe_out_of_reach_is_a_warning_and_the_next_run_is_queued(settings, caplog):
    """A periodic task that cannot reach Stripe logs one line (no failed task, no traceback)
    and is queued again: the next run asks Stripe again."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}
    down = stripe_api.APIConnectionError("Connection refused")

    with mock.patch("payments.reconcile.stripe_reconcile", side_effect=down):
        tasks.stripe_reconcile_periodic.call()

    path = tasks.stripe_reconcile_periodic.module_path
    assert DBTaskResult.objects.filter(task_path=path).count() == 1  # the next run
    [line] = [r for r in caplog.records if r.name == "payments.tasks"]
    assert (line.levelname, line.exc_info) == ("WARNING", None)
    assert "Stripe out of reach" in line.getMessage()
