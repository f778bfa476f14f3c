"""Issues 17.2 and 20.3: no retry of a refund can double it or be stuck on an answer Stripe
keeps for its key; a refund is failed only when Stripe answered and refused it; what Stripe
refused because of refunds made in its dashboard is read at once; lines that cost nothing are
given back without a money refund."""

from __future__ import annotations

import pytest

from accounts.models import Entitlement
from payments import fulfilment, refunds
from payments.models import Order, Refund
from tests.factories import ProductFactory, UserFactory
from tests.support.orders import paid_session, pending_order
from tests.support.tasks import run_deferred

pytestmark = pytest.mark.django_db


def test_an_error_answer_is_followed_by_a_look_at_stripe_and_a_new_key(paid_order, stripe_money):
    order = paid_order(amount=5000)
    stripe_money.faults = ["error"]  # a 500 Stripe keeps for the key, and replays

    first = refunds.order_refund(order_id=order.pk, request_token="k1", amount=1000)
    again = refunds.order_refund(order_id=order.pk, request_token="k1", amount=1000)

    assert first.status == Refund.Status.REQUESTED and first.attempt == 2
    assert again.status == Refund.Status.SUCCEEDED and again.requests == 2
    keys = [create["key"] for create in stripe_money.creates]
    assert keys == [first.idempotency_key, f"{first.idempotency_key}-retry2"]
    assert stripe_money.refunded(order.stripe_payment_intent_id) == 1000


def test_a_refund_whose_answer_was_lost_stays_requested_counted_and_is_found(
    paid_order, stripe_money
):
    """Issue 20.3: $10 asked, the answer lost: one $10 refund, never $20."""
    order = paid_order(amount=5000)
    stripe_money.faults = ["lose"]

    lost = refunds.order_refund(order_id=order.pk, request_token="l1", amount=1000)
    order.refresh_from_db()
    left = order.refundable
    with pytest.raises(refunds.RefundError, match="At most 4000"):
        refunds.order_refund(order_id=order.pk, request_token="l2", amount=4500)
    found = refunds.order_refund(order_id=order.pk, request_token="l1", amount=1000)

    assert lost.status == Refund.Status.REQUESTED and "No answer from Stripe" in lost.error
    assert left == 4000  # counted against what is left while unanswered
    assert not order.events.filter(kind="refund_failed").exists()
    assert found.status == Refund.Status.SUCCEEDED and found.stripe_refund_id
    assert len(stripe_money.creates) == 1  # found at Stripe, not asked for again
    assert stripe_money.refunded(order.stripe_payment_intent_id) == 1000


def test_a_409_is_neither_still_running_for_ever_nor_a_failure(paid_order, stripe_money):
    order = paid_order(amount=5000)
    stripe_money.faults = ["busy"]

    busy = refunds.order_refund(order_id=order.pk, request_token="b1", amount=500)
    again = refunds.refund_send(refund_id=busy.pk)

    assert busy.status == Refund.Status.REQUESTED and busy.attempt == 1  # the key is not spent
    assert again.status == Refund.Status.SUCCEEDED
    assert [c["key"] for c in stripe_money.creates] == [busy.idempotency_key]
    assert stripe_money.refunded(order.stripe_payment_intent_id) == 500


def test_an_idempotency_error_spends_the_key_and_is_not_read_as_still_running(
    paid_order, stripe_money
):
    order = paid_order(amount=5000)
    refund = refunds.order_refund(order_id=order.pk, request_token="i1", amount=500)
    clash = Refund.objects.create(
        order=order, amount=300, currency="usd", idempotency_key="clash", requests=1
    )
    stripe_money.keys[clash.stripe_key] = (("other",), {"id": "re_other"})

    refunds.refund_send(refund_id=clash.pk)
    clash.refresh_from_db()
    refunds.refund_send(refund_id=clash.pk)

    assert refund.status == Refund.Status.SUCCEEDED
    clash.refresh_from_db()
    assert clash.attempt == 2 and clash.status == Refund.Status.SUCCEEDED
    assert stripe_money.refunded(order.stripe_payment_intent_id) == 800


def test_a_refusal_is_the_only_failure(paid_order, stripe_money):
    order = paid_order(amount=5000)
    stripe_money.faults = ["refuse"]

    refused = refunds.order_refund(order_id=order.pk, request_token="r1", amount=500)

    assert refused.status == Refund.Status.FAILED
    order.refresh_from_db()
    assert (order.amount_refunding, order.refundable) == (0, 5000)


def test_a_refund_already_made_in_the_dashboard_is_read_at_once(paid_order, stripe_money):
    order = paid_order(amount=5000)
    stripe_money.refund(order.stripe_payment_intent_id, 3000)  # in Stripe's dashboard

    refused = refunds.order_refund(order_id=order.pk, request_token="d1", amount=4000)

    order.refresh_from_db()
    assert refused.status == Refund.Status.FAILED
    assert "already been refunded" in refused.error
    assert (order.status, order.amount_refunded, order.refundable) == (
        Order.Status.PARTIALLY_REFUNDED,
        3000,
        2000,
    )


def test_lines_bought_at_100_percent_off_are_restocked_without_a_money_refund(
    paid_order, stripe_money
):
    free, paid = ProductFactory(stock=1), ProductFactory(stock=1)
    order = paid_order(amount=500, lines=[(free, 2, 0), (paid, 1, 500)])
    line = order.lines.get(product=free)

    given = refunds.order_refund(
        order_id=order.pk,
        request_token="z1",
        lines=[refunds.LineRefund(line_id=line.pk, quantity=2)],
        restock=True,
    )

    free.refresh_from_db()
    order.refresh_from_db()
    assert (given.status, given.amount, given.restocked) == (Refund.Status.SUCCEEDED, 0, True)
    assert free.stock == 3
    assert stripe_money.creates == []
    assert (order.status, order.amount_refunded) == (Order.Status.PAID, 0)


def test_a_free_members_pass_is_revoked_without_a_money_refund(paid_order, stripe_money):
    user = UserFactory()
    order = paid_order(amount=0, kind=Order.Kind.ACCESS, user=user, lines=[])
    order.lines.create(
        product=ProductFactory(stock=0), stripe_price_id="price_x", quantity=1, unit_amount=0
    )
    order.stripe_payment_intent_id = ""
    order.save()
    Entitlement.objects.create(user=user, order=order)

    refunds.order_refund(order_id=order.pk, request_token="z2", everything=True)

    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert not Entitlement.objects.live().filter(user=user).exists()
    assert stripe_money.creates == []


def test_the_unfilled_orders_refund_is_not_stuck_on_a_kept_error(
    stripe_sessions, stripe_money, django_capture_on_commit_callbacks
):
    """Before: one fixed key per order, so every retry got Stripe's kept 500 back."""
    product = ProductFactory(stock=0)
    order = pending_order((product, 1))
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    stripe_money.pay(f"pi_test_{order.pk}", 1500)
    stripe_money.faults = ["error"]

    with django_capture_on_commit_callbacks(execute=True):
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    with django_capture_on_commit_callbacks(execute=True):
        run_deferred()

    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert [c["key"] for c in stripe_money.creates] == [
        order.idempotency_key("refund"),
        order.idempotency_key("refund") + "-retry2",
    ]
    assert stripe_money.refunded(order.stripe_payment_intent_id) == 1500
