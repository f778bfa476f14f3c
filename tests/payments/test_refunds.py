"""Staff refunds with Stripe patched at payments/stripe_api.py: one refund per request."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
import stripe
from django.core import mail
from django.utils import timezone

from payments import refunds
from payments.models import Order, Refund
from tests.factories import OrderFactory, OrderLineFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order():
    order = OrderFactory(
        email="kim@example.com",
        status=Order.Status.PAID,
        amount_total=5000,
        amount_subtotal=5000,
        stripe_payment_intent_id="pi_test_refunds",
        paid_at=timezone.now(),
    )
    OrderLineFactory(order=order, product=ProductFactory(stock=3), quantity=2, unit_amount=2500)
    return order


def answer(amount: int, refund_id: str = "re_1") -> dict:
    return {"id": refund_id, "object": "refund", "amount": amount, "status": "succeeded"}


def test_an_interrupted_request_is_finished_by_the_same_request_again(
    order, django_capture_on_commit_callbacks
):
    key = refunds.refund_idempotency_key(order_id=order.pk, request_token="t1")
    Refund.objects.create(order=order, amount=1000, currency="usd", idempotency_key=key)
    Refund.objects.filter(idempotency_key=key).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )

    with (
        mock.patch("payments.stripe_api.refund_create", return_value=answer(1000)) as create,
        django_capture_on_commit_callbacks(execute=True),
    ):
        refund = refunds.order_refund(order_id=order.pk, request_token="t1", amount=1000)

    assert create.call_args.kwargs["idempotency_key"] == key
    assert (refund.status, refund.stripe_refund_id) == ("succeeded", "re_1")
    assert Refund.objects.count() == 1
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 1000)


def test_a_request_in_flight_is_not_sent_twice(order, monkeypatch):
    monkeypatch.setattr(refunds, "ANSWER_WAIT_SECONDS", 0.1)  # Stripe never answers it here
    key = refunds.refund_idempotency_key(order_id=order.pk, request_token="t2")
    Refund.objects.create(
        order=order, amount=1000, currency="usd", idempotency_key=key, sent_at=timezone.now()
    )

    with mock.patch("payments.stripe_api.refund_create") as create:
        refund = refunds.order_refund(order_id=order.pk, request_token="t2", amount=1000)

    create.assert_not_called()
    assert refund.status == Refund.Status.REQUESTED


def test_a_form_submitted_again_gets_the_answer_of_its_first_submit(order):
    """A double click: the second submit finds the first one's request at Stripe and waits
    for its answer, so that staff read what Stripe said rather than "no answer yet"."""
    key = refunds.refund_idempotency_key(order_id=order.pk, request_token="t6")
    first = Refund.objects.create(
        order=order, amount=1000, currency="usd", idempotency_key=key, sent_at=timezone.now()
    )
    looks = []

    def first_submit_answered(seconds):  # the first submit's answer lands meanwhile
        looks.append(seconds)
        if len(looks) == 3:
            Refund.objects.filter(pk=first.pk).update(
                status=Refund.Status.SUCCEEDED, stripe_refund_id="re_first", sent_at=None
            )

    with (
        mock.patch("payments.stripe_api.refund_create") as create,
        mock.patch("payments.refunds.time.sleep", side_effect=first_submit_answered),
    ):
        refund = refunds.order_refund(order_id=order.pk, request_token="t6", amount=1000)

    create.assert_not_called()
    assert (refund.status, refund.stripe_refund_id) == (Refund.Status.SUCCEEDED, "re_first")
    assert len(looks) == 3


def test_stripe_busy_with_the_same_key_leaves_the_request_to_its_first_caller(order):
    busy = stripe.IdempotencyError("another in-progress request uses this key")

    with mock.patch("payments.stripe_api.refund_create", side_effect=busy):
        refund = refunds.order_refund(order_id=order.pk, request_token="t3", amount=500)

    assert refund.status == Refund.Status.REQUESTED
    assert not order.events.filter(kind="refund_failed").exists()


def test_refunding_every_line_refunds_the_order_and_restocks(
    order, django_capture_on_commit_callbacks
):
    line = order.lines.get()
    stock = line.product.stock

    with (
        mock.patch("payments.stripe_api.refund_create", return_value=answer(5000)) as create,
        django_capture_on_commit_callbacks(execute=True),
    ):
        refunds.order_refund(
            order_id=order.pk,
            request_token="t4",
            lines=[refunds.LineRefund(line_id=line.pk, quantity=2)],
            restock=True,
        )

    assert create.call_args.kwargs["amount"] == 5000
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.REFUNDED, 5000)
    line.product.refresh_from_db()
    assert line.product.stock == stock + 2
    with pytest.raises(refunds.RefundError):
        refunds.order_refund(
            order_id=order.pk,
            request_token="t5",
            lines=[refunds.LineRefund(line_id=line.pk, quantity=1)],
        )
    assert [m.subject for m in mail.outbox] == [f"Your Amazin order #{order.pk} was refunded"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_submits_of_one_refund_request_ask_stripe_once():
    from tests.payments.test_concurrency import run_at_once

    order = OrderFactory(
        status=Order.Status.PAID,
        amount_total=5000,
        stripe_payment_intent_id="pi_test_race",
        paid_at=timezone.now(),
    )
    calls = []

    def slow_stripe(**kwargs):
        calls.append(kwargs["idempotency_key"])
        return answer(kwargs["amount"], "re_race")

    with mock.patch("payments.stripe_api.refund_create", side_effect=slow_stripe):
        results = run_at_once(
            6, lambda i: refunds.order_refund(order_id=order.pk, request_token="same", amount=700)
        )

    assert not [r for r in results if isinstance(r, Exception)]
    assert len(calls) == 1
    assert Refund.objects.get().stripe_refund_id == "re_race"
    order.refresh_from_db()
    assert order.amount_refunded == 700
    assert order.events.filter(kind="refunded").count() == 1
