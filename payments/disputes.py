"""Disputes (chargebacks) of an order's payment, as Stripe says them.

`charge.dispute.created|updated|closed|funds_withdrawn|funds_reinstated` are only triggers:
the dispute is read from Stripe again (`dispute_sync`) and applied to its order's `Dispute`
row (`dispute_apply`), in the lock order of payments.refund_sync (the order's row, then its
refunds, then its disputes). Staff are emailed, and the order marked for them, when a dispute
opens and when it closes. A lost dispute is money gone: it counts in the order's
`amount_disputed` (less to refund; `signals.order_dispute_lost` takes back a members' pass)
and the shopper is told their bank returned it; a won one leaves the money with the shop.
Stock is never touched: the goods are wherever they are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from payments import stripe_api
from payments.emails import order_email, staff_alert
from payments.models import Dispute, Order, OrderEvent
from payments.refund_sync import PaymentAtStripe, payment_sync
from store.money import format_money

logger = logging.getLogger(__name__)

CLOSING_EVENT = {
    Dispute.Status.WON: OrderEvent.Kind.DISPUTE_WON,
    Dispute.Status.LOST: OrderEvent.Kind.DISPUTE_LOST,
}


# Open statuses a closed dispute never goes back to at Stripe (only the appeal ones follow a
# close).
REOPENED_NEVER = (
    Dispute.Status.WARNING_NEEDS_RESPONSE,
    Dispute.Status.WARNING_UNDER_REVIEW,
    Dispute.Status.NEEDS_RESPONSE,
    Dispute.Status.UNDER_REVIEW,
)


def dispute_sync(*, dispute_id: str) -> Order | None:
    """A dispute changed at Stripe: read it again and apply it to its order. None for a
    dispute of no PaymentIntent (not a Checkout payment); NoOrderYet if no order has it."""
    if not dispute_id:
        return None
    answer = stripe_api.dispute_retrieve(dispute_id)
    payment_intent = stripe_api.stripe_id_of(answer.get("payment_intent"))
    if not payment_intent and answer.get("charge"):
        charge = stripe_api.charge_retrieve(stripe_api.stripe_id_of(answer.get("charge")))
        payment_intent = stripe_api.stripe_id_of(charge.get("payment_intent"))
    if not payment_intent:
        return None
    return payment_sync(at_stripe=PaymentAtStripe(payment_intent, disputes=[answer]))


def _when(timestamp: Any) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), tz=UTC) if timestamp else None


def dispute_apply(*, order: Order, answer: dict[str, Any]) -> Dispute | None:
    """Stripe's dispute `answer` becomes (or updates) the order's Dispute row, with its
    history and staff's emails; call with the order's row locked (then
    refund_sync.order_money_update counts a lost one)."""
    stripe_id = answer.get("id") or ""
    if not stripe_id:
        return None
    dispute = Dispute.objects.select_for_update().filter(stripe_dispute_id=stripe_id).first()
    if dispute is not None and dispute.order_id != order.pk:
        logger.error("Dispute %s at Stripe is not of order %s", stripe_id, order.pk)
        return None
    was = dispute.status if dispute is not None else None
    status = answer.get("status") or Dispute.Status.NEEDS_RESPONSE
    if dispute is not None and not dispute.is_open and status in REOPENED_NEVER:
        # A closed dispute opens again only by an appeal: an open status read now is older
        # than the close applied already (two processes read Stripe at once).
        logger.info("Dispute %s: a stale read (%s) after it closed, ignored", stripe_id, status)
        return dispute
    dispute = dispute or Dispute(order=order, stripe_dispute_id=stripe_id)
    dispute.stripe_charge_id = stripe_api.stripe_id_of(answer.get("charge"))
    dispute.stripe_payment_intent_id = (
        stripe_api.stripe_id_of(answer.get("payment_intent")) or order.stripe_payment_intent_id
    )
    dispute.amount = int(answer.get("amount") or 0)
    dispute.currency = answer.get("currency") or order.currency
    dispute.status = status
    dispute.reason = (answer.get("reason") or "")[:64]
    dispute.evidence_due_by = _when((answer.get("evidence_details") or {}).get("due_by"))
    dispute.livemode = bool(answer.get("livemode"))
    dispute.opened_at = _when(answer.get("created"))
    if not dispute.is_open and dispute.closed_at is None:
        dispute.closed_at = timezone.now()
    dispute.save()
    if was == dispute.status:
        return dispute
    amount = format_money(dispute.amount, dispute.currency)
    if was is None:
        due = dispute.evidence_due_by
        respond = f", evidence due by {due:%Y-%m-%d %H:%M} UTC" if due else ""
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.DISPUTE_OPENED,
            amount=dispute.amount,
            message=f"{stripe_id}: {dispute.reason or 'no reason given'}{respond}",
        )
        staff_alert(
            order=order,
            subject=f"Dispute of {amount} opened on order #{order.pk}",
            note=f"Dispute {stripe_id} of {amount} opened ({dispute.reason}){respond}: "
            f"{dispute.dashboard_url}",
        )
    if dispute.is_open and was is not None:
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.DISPUTE_UPDATED,
            amount=dispute.amount,
            message=f"{stripe_id}: {dispute.get_status_display()}",
        )
    if not dispute.is_open:
        OrderEvent.objects.create(
            order=order,
            kind=CLOSING_EVENT.get(dispute.status, OrderEvent.Kind.DISPUTE_UPDATED),
            amount=dispute.amount,
            message=f"{stripe_id}: {dispute.get_status_display()}",
        )
        staff_alert(
            order=order,
            subject=f"Dispute of {amount} {dispute.status} on order #{order.pk}",
            note=f"Dispute {stripe_id} of {amount} closed: {dispute.get_status_display()}.",
        )
        if dispute.status == Dispute.Status.LOST:
            order_email(order=order, template="order_dispute_lost")
    return dispute
