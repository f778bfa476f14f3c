"""Issue 17.2: disputes on the order. Staff see them (status, amount, reason, evidence due
by, a link to Stripe's dashboard) and are emailed when one opens and closes; a lost dispute is
money gone (and takes a members' pass back), a won one leaves the money; stock is untouched."""

from __future__ import annotations

from http import HTTPStatus
from unittest import mock

import pytest
from django.core import mail

from accounts.models import Entitlement
from payments import disputes, stripe_api, webhooks
from payments.models import Dispute, Order
from tests.factories import ProductFactory, UserFactory
from tests.support.stripe_events import event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _staff(settings):
    settings.STAFF_EMAILS = ["owner@example.com"]


@pytest.fixture
def post(webhook, django_capture_on_commit_callbacks):
    def send(event_type: str, obj: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return webhook.post(event(event_type, obj))

    return send


def test_a_dispute_is_on_its_order_and_staff_hear_when_it_opens_and_closes(
    paid_order, stripe_money, post, admin_client
):
    teapot = ProductFactory(stock=3)
    order = paid_order(amount=5000, lines=[(teapot, 2, 2500)])
    dispute = stripe_money.dispute(order.stripe_payment_intent_id, 5000, reason="fraudulent")

    opened = post("charge.dispute.created", dispute)
    page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    stripe_money.set_dispute(dispute["id"], status="won")
    post("charge.dispute.funds_reinstated", dispute)
    post("charge.dispute.closed", dispute)

    assert opened.status_code == HTTPStatus.OK
    for shown in ("Disputes", "fraudulent", "Needs a response", "$50.00", dispute["id"]):
        assert shown in page, shown
    assert f"https://dashboard.stripe.com/test/payments/{order.stripe_payment_intent_id}" in page
    row = Dispute.objects.get()
    assert (row.status, row.amount, row.order_id) == ("won", 5000, order.pk)
    assert row.evidence_due_by is not None and row.closed_at is not None
    order.refresh_from_db()
    assert (order.status, order.amount_disputed, order.refundable) == ("paid", 0, 5000)
    assert list(order.events.values_list("kind", flat=True)) == [
        "dispute_opened",
        "dispute_won",
    ]
    assert [m.subject for m in mail.outbox] == [
        f"[Amazin] Dispute of $50.00 opened on order #{order.pk}",
        f"[Amazin] Dispute of $50.00 won on order #{order.pk}",
    ]
    assert "opened" in order.attention
    teapot.refresh_from_db()
    assert teapot.stock == 3  # stock is not touched


def test_a_lost_dispute_is_money_gone_and_takes_the_pass_back(paid_order, stripe_money, post):
    user = UserFactory()
    order = paid_order(amount=2500, kind=Order.Kind.ACCESS, user=user)
    Entitlement.objects.create(user=user, order=order)
    dispute = stripe_money.dispute(order.stripe_payment_intent_id, 2500)
    post("charge.dispute.created", dispute)
    kept = Entitlement.objects.live().filter(user=user).exists()
    stripe_money.set_dispute(dispute["id"], status="lost")

    post("charge.dispute.closed", dispute)

    assert kept  # an open dispute is not yet lost
    order.refresh_from_db()
    assert (order.amount_disputed, order.refundable) == (2500, 0)
    assert not Entitlement.objects.live().filter(user=user).exists()
    assert [m.subject for m in mail.outbox if m.to == [order.email]] == [
        f"Your Amazin order #{order.pk}: your bank returned your payment"
    ]
    assert list(order.events.values_list("kind", flat=True))[-1] == "dispute_lost"


def test_a_disputes_payload_is_only_a_trigger(paid_order, stripe_money, post):
    order = paid_order(amount=2500)
    dispute = stripe_money.dispute(order.stripe_payment_intent_id, 2500)

    post("charge.dispute.closed", {**dispute, "status": "lost"})  # Stripe says otherwise

    order.refresh_from_db()
    assert Dispute.objects.get().status == "needs_response"
    assert order.amount_disputed == 0


def test_every_dispute_event_is_handled():
    assert {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    } <= set(webhooks.HANDLERS)


def test_a_stale_open_read_never_reopens_a_closed_dispute(paid_order, stripe_money):
    """Two processes read one dispute at once (updated, then closed): the older read, applied
    last, does not make a lost dispute open again (and its money not lost)."""
    order = paid_order(amount=2500)
    dispute = stripe_money.dispute(order.stripe_payment_intent_id, 2500)
    disputes.dispute_sync(dispute_id=dispute["id"])
    real_retrieve = stripe_api.dispute_retrieve.side_effect

    def first_read(dispute_id):
        stale = real_retrieve(dispute_id)  # still open; then it is lost, and another reads it:
        stripe_money.set_dispute(dispute_id, status="lost")
        with mock.patch("payments.stripe_api.dispute_retrieve", side_effect=real_retrieve):
            disputes.dispute_sync(dispute_id=dispute_id)
        return stale

    with mock.patch("payments.stripe_api.dispute_retrieve", side_effect=first_read):
        disputes.dispute_sync(dispute_id=dispute["id"])  # the older read, applied last

    order.refresh_from_db()
    assert Dispute.objects.get().status == Dispute.Status.LOST
    assert order.amount_disputed == 2500
