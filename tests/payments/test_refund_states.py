"""Issue 17.2: a refund is money returned only when Stripe says `succeeded`; pending, needing
action, failed and canceled refunds are shown to staff, and never told to the shopper as
refunded; a refund that fails puts the order back, alerts staff and restores a pass."""

from __future__ import annotations

from http import HTTPStatus
from unittest import mock

import pytest
from django.core import mail

from accounts.models import Entitlement
from payments import refund_sync, refunds, stripe_api, webhooks
from payments.models import Order, Refund
from tests.factories import UserFactory
from tests.support.stripe_events import event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _staff(settings):
    settings.STAFF_EMAILS = ["owner@example.com"]


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...`: what was queued on commit (emails) runs as it would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def kinds(order: Order) -> list[str]:
    return list(order.events.values_list("kind", flat=True))


def staff_mail() -> list[str]:
    return [str(m.subject) for m in mail.outbox if m.to == ["owner@example.com"]]


def shopper_mail() -> list[str]:
    return [str(m.subject) for m in mail.outbox if m.to == ["kim@example.com"]]


def test_a_pending_refund_is_not_money_returned_until_stripe_says_succeeded(
    paid_order, stripe_money, webhook, committed
):
    order = paid_order(amount=5000)
    stripe_money.status = "pending"

    with committed():
        refund = refunds.order_refund(order_id=order.pk, request_token="p1", amount=2000)
    order.refresh_from_db()
    pending = (order.status, order.amount_refunded, order.amount_refunding, order.refundable)
    told_then = shopper_mail()
    stripe_money.set_refund(refund.stripe_refund_id, status="succeeded")
    with committed():
        response = webhook.post(event("refund.updated", {"id": refund.stripe_refund_id}))

    assert refund.status == Refund.Status.PENDING
    assert pending == (Order.Status.PAID, 0, 2000, 3000)
    assert told_then == []  # nothing is true to tell yet
    assert response.status_code == HTTPStatus.OK
    order.refresh_from_db()
    assert (order.status, order.amount_refunded, order.amount_refunding) == (
        Order.Status.PARTIALLY_REFUNDED,
        2000,
        0,
    )
    assert kinds(order) == ["refund_requested", "refund_pending", "refunded"]
    assert shopper_mail() == [f"Your Amazin order #{order.pk}: refund of part of your payment"]


@pytest.mark.parametrize(
    ("status", "kind"),
    [("requires_action", "refund_requires_action"), ("canceled", "refund_canceled")],
)
def test_staff_see_every_status_stripe_gives_a_refund(paid_order, stripe_money, status, kind):
    order = paid_order(amount=5000)
    stripe_money.status = status

    refund = refunds.order_refund(order_id=order.pk, request_token="s1", amount=1000)

    order.refresh_from_db()
    assert refund.status == status
    assert kinds(order) == ["refund_requested", kind]
    assert order.amount_refunded == 0
    assert order.amount_refunding == (1000 if status == "requires_action" else 0)
    assert shopper_mail() == []


def test_a_refund_that_fails_after_it_succeeded_puts_the_order_back(
    paid_order, stripe_money, webhook, committed
):
    user = UserFactory()
    order = paid_order(amount=2500, kind=Order.Kind.ACCESS, user=user)
    Entitlement.objects.create(user=user, order=order)
    with committed():
        refund = refunds.order_refund(order_id=order.pk, request_token="f1", everything=True)
    order.refresh_from_db()
    refunded = (order.status, order.amount_refunded)
    revoked = not Entitlement.objects.live().filter(user=user).exists()
    stripe_money.set_refund(
        refund.stripe_refund_id, status="failed", failure_reason="expired_or_canceled_card"
    )

    with committed():
        response = webhook.post(event("refund.failed", {"id": refund.stripe_refund_id}))

    assert refunded == (Order.Status.REFUNDED, 2500) and revoked
    assert response.status_code == HTTPStatus.OK
    order.refresh_from_db()
    assert (order.status, order.amount_refunded, order.refundable) == (Order.Status.PAID, 0, 2500)
    assert Refund.objects.get().failure_reason == "expired_or_canceled_card"
    assert "failed at Stripe (expired_or_canceled_card)" in order.attention
    assert staff_mail() == [f"[Amazin] Refund failed on order #{order.pk}"]
    assert shopper_mail() == [
        f"Your Amazin order #{order.pk} was refunded",
        f"Your Amazin order #{order.pk}: your refund could not be completed",
    ]
    assert Entitlement.objects.live().filter(user=user, order=order).exists()  # restored
    assert kinds(order) == ["refund_requested", "refunded", "refund_failed"]


def test_charge_refund_updated_is_handled_like_refund_updated(paid_order, stripe_money, webhook):
    order = paid_order(amount=5000)
    made = stripe_money.refund(order.stripe_payment_intent_id, 1000, status="pending")
    webhook.post(event("charge.refund.updated", made))
    stripe_money.set_refund(made["id"], status="succeeded")

    webhook.post(event("charge.refund.updated", made))

    order.refresh_from_db()
    assert {"refund.failed", "charge.refund.updated"} <= set(webhooks.HANDLERS)
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 1000)
    assert kinds(order) == ["refund_pending", "refunded"]


def test_a_refund_made_in_stripes_dashboard_tells_the_shopper_as_staff_refunds_do(
    paid_order, stripe_money, webhook, committed
):
    order = paid_order(amount=5000)
    stripe_money.refund(order.stripe_payment_intent_id, 5000)
    charge = {"id": f"ch_{order.stripe_payment_intent_id}", "object": "charge"}

    with committed():
        webhook.post(event("charge.refunded", charge))

    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert Refund.objects.get().source == Refund.Source.STRIPE
    assert shopper_mail() == [f"Your Amazin order #{order.pk} was refunded"]


def test_the_charge_is_not_read_for_its_refunds_they_are_listed(paid_order, stripe_money, webhook):
    """Charges stopped embedding refunds in API 2022-11-15: the refunds are listed."""
    order = paid_order(amount=5000)
    made = stripe_money.refund(order.stripe_payment_intent_id, 700)
    charge = {"id": f"ch_{order.stripe_payment_intent_id}", "object": "charge"}

    webhook.post(event("charge.refunded", charge))

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 700)
    assert list(order.refunds.values_list("stripe_refund_id", "amount", "status")) == [
        (made["id"], 700, "succeeded")
    ]


def test_a_stale_read_never_undoes_a_newer_one(paid_order, stripe_money):
    """Two processes read one refund at once (refund.updated and refund.failed): the older
    read, applied last, does not bring a failed refund back to succeeded."""
    order = paid_order(amount=5000)
    made = stripe_money.refund(order.stripe_payment_intent_id, 5000)
    refund_sync.refund_reread(refund_id=made["id"])
    real_retrieve = stripe_api.refund_retrieve.side_effect

    def first_read(refund_id):
        stale = real_retrieve(refund_id)  # "succeeded"; then it fails, and another reads it:
        stripe_money.set_refund(refund_id, status="failed", failure_reason="lost_or_stolen_card")
        with mock.patch("payments.stripe_api.refund_retrieve", side_effect=real_retrieve):
            refund_sync.refund_reread(refund_id=refund_id)
        return stale

    with mock.patch("payments.stripe_api.refund_retrieve", side_effect=first_read):
        refund_sync.refund_reread(refund_id=made["id"])  # the older read, applied last

    order.refresh_from_db()
    assert Refund.objects.get(stripe_refund_id=made["id"]).status == Refund.Status.FAILED
    assert (order.status, order.amount_refunded) == (Order.Status.PAID, 0)
    assert kinds(order)[-1] == "refund_failed"


def test_a_second_refund_at_stripe_for_one_request_is_recorded_and_told_to_staff(
    paid_order, stripe_money, committed
):
    order = paid_order(amount=5000)
    with committed():
        ours = refunds.order_refund(order_id=order.pk, request_token="once", amount=1000)
    again = stripe_money.refund(order.stripe_payment_intent_id, 1000)
    stripe_money.set_refund(again["id"], metadata={"amazin_refund": str(ours.pk)})

    with committed():
        refund_sync.refund_reread(refund_id=again["id"])
        refund_sync.refund_reread(refund_id=again["id"])  # told once

    order.refresh_from_db()
    assert order.amount_refunded == 2000  # money back is money back
    assert staff_mail() == [f"[Amazin] Two refunds at Stripe for one request on order #{order.pk}"]
