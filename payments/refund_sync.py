"""Stripe's word on an order's money: its refunds (and, through payments.disputes, its
disputes), re-read from Stripe and applied to the order.

Money is where Stripe says it is. A refund is money returned only once Stripe says
`succeeded` (`Order.amount_refunded`); one requested with no answer yet, `pending` or
`requires_action` is on its way (`Order.amount_refunding`: counted against what is left to
refund, never told to the shopper as refunded); one that `failed` or was `canceled` returned
nothing, and one that fails after it succeeded (Stripe's test card 4000 0000 0000 5126) puts
the order back: paid or partly refunded again, staff alerted, a members' pass revoked for it
restored (`signals.order_unrefunded`). Every change of a refund's status is in the order's
history.

Events (`charge.refunded`, `refund.*`, `charge.refund.updated`) are only triggers: the refund
or the payment's refunds are read from Stripe again (charges stopped embedding their refunds
in API 2022-11-15, so they are listed by PaymentIntent). A refund or dispute of a payment no
order has yet raises `NoOrderYet`: the event is kept (payments.money_look applies it once the
order exists), and fulfilment reads the payment's refunds and disputes as it fills the order.

Lock order, the same wherever money is written (a staff refund, a webhook's sync, fulfilment,
the periodic look), so that none can deadlock another: the Order row first, then its Refund
rows, then its Dispute rows, then products (restocking). Nothing here calls Stripe inside a
transaction: reads come first, then one short transaction applies them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from payments import signals, stripe_api
from payments.emails import order_email, staff_alert
from payments.models import Dispute, Order, OrderEvent, Refund
from store.reservations import stock_return

logger = logging.getLogger(__name__)

EVENT_OF: dict[str, str] = {
    Refund.Status.PENDING: OrderEvent.Kind.REFUND_PENDING,
    Refund.Status.REQUIRES_ACTION: OrderEvent.Kind.REFUND_REQUIRES_ACTION,
    Refund.Status.SUCCEEDED: OrderEvent.Kind.REFUNDED,
    Refund.Status.FAILED: OrderEvent.Kind.REFUND_FAILED,
    Refund.Status.CANCELED: OrderEvent.Kind.REFUND_CANCELED,
}
# Stripe accepted the refund (the goods it was for may go back on sale).
ACCEPTED = (Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION, Refund.Status.SUCCEEDED)
# How often the periodic look asks Stripe about a refund still open, if no event came.
CHECK_MIN = timedelta(minutes=1)
CHECK_MAX = timedelta(hours=6)


class NoOrderYet(Exception):  # noqa: N818 - a state, not a failure
    """Stripe's object is about a payment no order has (yet): keep the event for it."""

    def __init__(self, payment_intent_id: str) -> None:
        super().__init__(f"No order has payment {payment_intent_id} yet")
        self.payment_intent_id = payment_intent_id


@dataclass
class PaymentAtStripe:
    """What Stripe has for one payment: its refunds and disputes (None: not read, leave)."""

    payment_intent_id: str
    refunds: list[dict[str, Any]] | None = field(default=None)
    disputes: list[dict[str, Any]] | None = field(default=None)

    def refunded(self) -> int:
        return sum(
            int(r.get("amount") or 0)
            for r in self.refunds or []
            if r.get("status") == Refund.Status.SUCCEEDED
        )


def payment_read(payment_intent_id: str) -> PaymentAtStripe:
    """Every refund and dispute Stripe has for the payment (two list requests)."""
    return PaymentAtStripe(
        payment_intent_id=payment_intent_id,
        refunds=stripe_api.refunds_of_payment(payment_intent_id),
        disputes=stripe_api.disputes_of_payment(payment_intent_id),
    )


# A refund's statuses in the order Stripe moves it through them (requires_action and pending
# may alternate; succeeded can still fail, as with test card 4000 0000 0000 5126; failed and
# canceled are final). A read that would move a refund back is older than one applied
# already (two processes read Stripe at once, the later answer applied first): it is ignored.
STAGE: dict[str, int] = {
    Refund.Status.REQUESTED: 0,
    Refund.Status.PENDING: 1,
    Refund.Status.REQUIRES_ACTION: 1,
    Refund.Status.SUCCEEDED: 2,
    Refund.Status.FAILED: 3,
    Refund.Status.CANCELED: 3,
}


def status_of(answer: dict[str, Any]) -> str:
    """Stripe's status of a refund, as one of ours (an unknown one is still open)."""
    status = answer.get("status") or ""
    return status if status in Refund.Status.values else Refund.Status.PENDING


def payment_sync(*, at_stripe: PaymentAtStripe, actor: Any = None) -> Order:
    """Apply what Stripe has for a payment to its order; raises NoOrderYet if none has it."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .filter(stripe_payment_intent_id=at_stripe.payment_intent_id)
            .first()
        )
        if order is None:
            raise NoOrderYet(at_stripe.payment_intent_id)
        payment_apply(order=order, at_stripe=at_stripe, actor=actor)
    return order


def payment_apply(*, order: Order, at_stripe: PaymentAtStripe, actor: Any = None) -> None:
    """In the caller's transaction, the order's row locked: Stripe's refunds and disputes
    become the order's (rows made for those made elsewhere), then its money follows."""
    from payments import disputes  # disputes builds on this module

    for answer in reversed(at_stripe.refunds or []):  # oldest first, as they happened
        refund_apply(order=order, answer=answer, actor=actor)
    for answer in reversed(at_stripe.disputes or []):
        disputes.dispute_apply(order=order, answer=answer)
    order_money_update(order=order)


def charge_sync(*, charge_id: str) -> Order | None:
    """A charge's refunds changed (`charge.refunded`): re-read the charge, list its payment's
    refunds, and apply them. None for a charge of no PaymentIntent (not a Checkout payment)."""
    if not charge_id:
        return None
    charge = stripe_api.charge_retrieve(charge_id)
    payment_intent = stripe_api.stripe_id_of(charge.get("payment_intent"))
    if not payment_intent:
        return None
    refunds = stripe_api.refunds_of_payment(payment_intent)
    return payment_sync(at_stripe=PaymentAtStripe(payment_intent, refunds=refunds))


def refund_reread(*, refund_id: str) -> Order | None:
    """One refund changed (`refund.*`, `charge.refund.updated`): re-read it and apply it."""
    if not refund_id:
        return None
    answer = stripe_api.refund_retrieve(refund_id)
    payment_intent = stripe_api.stripe_id_of(answer.get("payment_intent"))
    if not payment_intent:
        return None
    return payment_sync(at_stripe=PaymentAtStripe(payment_intent, refunds=[answer]))


def refund_apply(
    *, order: Order, answer: dict[str, Any], refund: Refund | None = None, actor: Any = None
) -> Refund | None:
    """Stripe's refund `answer` becomes (or updates) the order's Refund row: found by its
    Stripe id, or by our `metadata.amazin_refund` (a request whose answer was lost), or made
    here (a refund made in Stripe's dashboard). Call with the order's row locked."""
    stripe_id = answer.get("id") or ""
    if not stripe_id:
        return None
    if refund is None:
        refund = Refund.objects.select_for_update().filter(stripe_refund_id=stripe_id).first()
    ours = str((answer.get("metadata") or {}).get("amazin_refund") or "")
    if refund is None and ours.isdigit():
        refund = (
            Refund.objects.select_for_update()
            .filter(pk=int(ours), order=order, stripe_refund_id=None)
            .first()
        )
    if refund is not None and refund.order_id != order.pk:
        logger.error("Refund %s at Stripe is not of order %s", stripe_id, order.pk)
        return None
    if refund is None:
        if ours.isdigit() and Refund.objects.filter(pk=int(ours), order=order).exists():
            # Ours, and its request has its refund already: the one request was refunded
            # twice. Recorded as made at Stripe (it is money back), and staff are told.
            staff_alert(
                order=order,
                subject=f"Two refunds at Stripe for one request on order #{order.pk}",
                note=f"Refund {stripe_id} carries the request of refund #{ours}, which has its "
                "own refund at Stripe already: look at both in Stripe's dashboard.",
            )
        refund = Refund.objects.create(
            order=order,
            amount=int(answer.get("amount") or 0),
            currency=answer.get("currency") or order.currency,
            source=Refund.Source.STRIPE,
            stripe_refund_id=stripe_id,
            status=Refund.Status.REQUESTED,  # moved to Stripe's status just below
            reason=(answer.get("reason") or "made at Stripe")[:255],
        )
    status = status_of(answer)
    if STAGE[status] < STAGE[refund.status]:
        logger.info("Refund %s: a stale read (%s) after %s, ignored", stripe_id, status, refund)
        return refund
    refund_status_set(
        order=order,
        refund=refund,
        status=status,
        stripe_id=stripe_id,
        amount=int(answer.get("amount") or 0) or refund.amount,
        failure_reason=answer.get("failure_reason") or "",
        actor=actor,
    )
    return refund


def refund_status_set(
    *,
    order: Order,
    refund: Refund,
    status: str,
    stripe_id: str = "",
    amount: int | None = None,
    failure_reason: str = "",
    error: str = "",
    actor: Any = None,
) -> None:
    """Record Stripe's word on `refund` and what follows from a change of status: the
    history, the goods back on sale once Stripe accepted it, the shopper told once the money
    is back, staff alerted when it failed. (The order's money: `order_money_update`.)"""
    was = refund.status
    now = timezone.now()
    refund.status = status
    refund.stripe_refund_id = stripe_id or refund.stripe_refund_id
    refund.amount = amount if amount is not None else refund.amount
    refund.failure_reason = failure_reason[:64] or refund.failure_reason
    refund.error = error[:2000] or refund.error
    refund.sent_at = None
    refund.check_at = refund_next_check(refund=refund, now=now)
    refund.save()
    if was == status:
        return
    who = actor if getattr(actor, "is_authenticated", False) else refund.created_by
    if status in EVENT_OF:
        detail = refund.failure_reason or refund.error
        OrderEvent.objects.create(
            order=order,
            kind=EVENT_OF[status],
            amount=refund.amount,
            message=" ".join(
                part
                for part in (
                    refund.stripe_refund_id or "",
                    "(made at Stripe)" if refund.source == Refund.Source.STRIPE else "",
                    f"- {detail}" if detail and status in Refund.NOT_MADE else "",
                )
                if part
            ),
            actor=who,
        )
    if status in ACCEPTED and refund.restock and not refund.restocked and refund.lines:
        _restock(order=order, refund=refund, actor=who)
    if status == Refund.Status.SUCCEEDED and refund.amount and refund.source != "unfilled":
        back = order.refunds.filter(status=status).aggregate(s=Sum("amount"))["s"] or 0
        subject = (
            f"Your Amazin order #{order.pk} was refunded"
            if back >= order.amount_total
            else f"Your Amazin order #{order.pk}: refund of part of your payment"
        )
        order_email(order=order, template="order_refund_issued", subject=subject, refund=refund)
    if status == Refund.Status.FAILED:
        _refund_failed(order=order, refund=refund, was=was)


def _money(refund: Refund) -> str:
    from store.money import format_money

    return format_money(refund.amount, refund.currency)


def _refund_failed(*, order: Order, refund: Refund, was: str) -> None:
    why = refund.failure_reason or refund.error or "no reason given"
    if was == Refund.Status.REQUESTED and refund.source == Refund.Source.STAFF:
        return  # refused at once, in the admin: the member of staff sees it on the form
    note = f"Refund of {_money(refund)} failed at Stripe ({why}): the money is still ours."
    staff_alert(order=order, subject=f"Refund failed on order #{order.pk}", note=note)
    if was == Refund.Status.SUCCEEDED and refund.source != Refund.Source.UNFILLED:
        # They were told the money was on its way back: tell them it is not.
        subject = f"Your Amazin order #{order.pk}: your refund could not be completed"
        order_email(order=order, template="order_refund_failed", subject=subject, refund=refund)


def _restock(*, order: Order, refund: Refund, actor: Any) -> None:
    quantities: dict[int, int] = {}
    lines = list(order.lines.select_related("product").filter(pk__in=map(int, refund.lines)))
    for line in lines:
        quantities[line.product_id] = int(refund.lines[str(line.pk)])
    stock_return(quantities=quantities)
    refund.restocked = True
    refund.save(update_fields=["restocked"])
    OrderEvent.objects.create(
        order=order,
        kind=OrderEvent.Kind.STOCK_RESTORED,
        message=", ".join(f"{quantities[line.product_id]} x {line.product}" for line in lines),
        actor=actor,
    )


def refund_next_check(*, refund: Refund, now: datetime) -> datetime | None:
    """When the periodic look next asks Stripe about an open refund (None once final): a
    quarter of its age from now, within CHECK_MIN and CHECK_MAX (its events usually come
    first)."""
    if refund.status not in Refund.OPEN:
        return None
    age = now - (refund.created_at or now)
    return now + min(max(age / 4, CHECK_MIN), CHECK_MAX)


def order_money_update(*, order: Order) -> None:
    """The order's money and status from its Refund and Dispute rows (call in a
    transaction, the order's row locked), and what a change of status announces.

    Refunded in full (`succeeded`, or every line given back on an order that cost nothing):
    `refunded`, and `signals.order_refunded`. Back from refunded (a refund failed):
    `signals.order_unrefunded`. An unfilled order (`refund_pending`) becomes `refunded`, and
    its shopper is told, once its refund succeeded. A dispute newly lost:
    `signals.order_dispute_lost`; one no longer lost: `signals.order_unrefunded`.
    """
    refunds = order.refunds.all()
    refunded = refunds.filter(status=Refund.Status.SUCCEEDED).aggregate(s=Sum("amount"))["s"]
    refunding = refunds.filter(status__in=Refund.OPEN).aggregate(s=Sum("amount"))["s"]
    disputed = order.disputes.filter(status=Dispute.Status.LOST).aggregate(s=Sum("amount"))["s"]
    was_status, was_disputed = order.status, order.amount_disputed
    order.amount_refunded, order.amount_refunding = refunded or 0, refunding or 0
    order.amount_disputed = disputed or 0
    in_full = (
        order.amount_refunded >= order.amount_total
        if order.amount_total > 0
        else _every_line_given_back(order)
    )
    if was_status in (*Order.PAID_STATUSES, Order.Status.REFUNDED):
        if in_full:
            order.status = Order.Status.REFUNDED
        elif order.amount_refunded > 0:
            order.status = Order.Status.PARTIALLY_REFUNDED
        else:
            order.status = Order.Status.PAID
    elif was_status == Order.Status.REFUND_PENDING and in_full and order.amount_total > 0:
        order.status = Order.Status.REFUNDED
        order.problem = order.problem.replace("refund under way", "refunded")
        order_email(order=order, template="order_refunded")
    order.save(
        update_fields=[
            "amount_refunded",
            "amount_refunding",
            "amount_disputed",
            "status",
            "problem",
        ]
    )
    # In the transaction: what receivers revoke or restore commits with the order.
    if order.status == Order.Status.REFUNDED and was_status != Order.Status.REFUNDED:
        signals.order_refunded.send(sender=Order, order=order)
    if was_status == Order.Status.REFUNDED and order.status in Order.PAID_STATUSES:
        signals.order_unrefunded.send(sender=Order, order=order)
    if order.amount_disputed > was_disputed:
        signals.order_dispute_lost.send(sender=Order, order=order)
    elif order.amount_disputed < was_disputed and order.is_paid:
        signals.order_unrefunded.send(sender=Order, order=order)


def _every_line_given_back(order: Order) -> bool:
    given: dict[int, int] = {}
    for lines in order.refunds.filter(status=Refund.Status.SUCCEEDED).values_list(
        "lines", flat=True
    ):
        for line_id, quantity in (lines or {}).items():
            given[int(line_id)] = given.get(int(line_id), 0) + int(quantity)
    ordered = list(order.lines.values_list("pk", "quantity"))
    return bool(ordered) and all(given.get(pk, 0) >= quantity for pk, quantity in ordered)
