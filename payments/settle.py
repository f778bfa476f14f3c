"""Settling an order with Stripe: do what Stripe says its session is, never more.

A pending order whose shopper left (cancel), whose time ran out (the sweep) or whose cart
changed, and a delayed payment the sweep looks at, are settled here: Stripe is asked first,
outside any transaction, and the order follows its answer (fulfilled, released, or left as it
is while Stripe cannot be asked). Nothing is released on a guess.

The cap on delayed payments: a transfer the shopper never sends stays unpaid at Stripe for
ever, so once the order is `DELAYED_PAYMENT_MAX_DAYS` old the sweep's next look gives up on it
(`delayed_payment_give_up`). It cancels the PaymentIntent at Stripe, outside any transaction,
and then settles as Stripe now says, never on its own guess: canceled, the order fails, its
hold is released and the shopper is told the transfer did not arrive in time; refused because
the money arrived just before, the order is fulfilled; no answer (Stripe down), nothing
changes and the next look tries again. Money that arrived is never dropped: a PaymentIntent
Stripe has canceled can no longer be paid, and one that succeeded cannot be canceled, so
Stripe's answer decides, and a fulfilment that won the order's row meanwhile keeps it
(`orders_release` only moves a processing order).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from payments import shipping, stripe_api
from payments.delayed import (
    DELAYED_FAILED,
    TIMED_OUT,
    delayed_payment_failed,
    delayed_payment_next_check,
    delayed_payment_overdue,
    unpaid_intent_status,
)
from payments.fulfilment import fulfil_checkout_session, session_fulfil
from payments.models import Order
from payments.orders import order_release
from payments.sessions import order_session

logger = logging.getLogger(__name__)


def refused_for_good(exc: Exception) -> bool:
    """Stripe answered and refused (nothing was made), as opposed to no answer or "busy"."""
    return isinstance(exc, stripe_api.InvalidRequestError) and not isinstance(
        exc, stripe_api.IdempotencyError
    )


def order_settle_with_stripe(*, order: Order) -> Order:
    """A pending order whose shopper left (cancel) or whose time ran out (sweep), or one
    whose delayed payment the sweep looks at: do what Stripe says its session is, never more.
    A complete, paid session is fulfilled, a complete one still unpaid awaits its payment
    (or fails with it: payments.delayed); an open one is expired at Stripe first; the stock
    is released only once Stripe says expired.
    If Stripe cannot be asked, nothing changes and the hold stays (the sweep asks again).
    An order with no session id yet is asked for its session by its idempotency key, so a
    session being created right now (or whose answer was lost) is found, not forgotten.
    """
    try:
        session = order_session(order=order)
        if session.get("status") == "open":
            session = stripe_api.checkout_session_expire(session["id"])
    except stripe_api.StripeError as exc:
        if not order.stripe_session_id and refused_for_good(exc):
            # No session was ever made (its expiry is past, a price went away): nobody can pay.
            order_release(order_id=order.pk)
            order.refresh_from_db()
            return order
        # Paid just now (expire refused: the next look sees it complete), or Stripe is down.
        logger.info("Order %s: Stripe did not settle its session: %s", order.pk, exc)
        return order
    if session.get("status") == "complete":
        # Only a retrieve answers "complete" (a create's answer, even replayed, was open), so
        # this is Stripe's word just now: no need to ask again.
        try:
            return session_fulfil(session=session) or order
        except stripe_api.StripeError as exc:
            logger.info("Order %s: fulfilment must wait for Stripe: %s", order.pk, exc)
            return order
    if session.get("status") == "expired":
        order_release(order_id=order.pk)
    order.refresh_from_db()
    return order


def delayed_payment_give_up(*, order: Order) -> Order:
    """The sweep's look at a delayed payment past DELAYED_PAYMENT_MAX_DAYS: cancel it at
    Stripe, then settle as Stripe says (see the module's docstring). Returns the order.

    Call it outside any transaction: Stripe is asked (up to three requests) with no row
    locked. Stripe refusing the cancel (the intent succeeded just before, or is canceled
    already) is not an error: the session is read again and settled as it is. Stripe not
    answering leaves the order and its hold as they are, for the next look. One idempotency
    key per order: a cancel whose answer was lost is answered the same when asked again.
    """
    session_id = order.stripe_session_id or ""
    try:
        session = stripe_api.checkout_session_retrieve(session_id)
        status = unpaid_intent_status(session)
        if status is not None and status not in DELAYED_FAILED:
            intent_id = stripe_api.stripe_id_of(session.get("payment_intent"))
            try:
                stripe_api.payment_intent_cancel(
                    intent_id or order.stripe_payment_intent_id,
                    idempotency_key=order.idempotency_key("cancel"),
                )
                logger.info("Order %s: transfer overdue, canceled at Stripe", order.pk)
            except stripe_api.StripeError as exc:
                if not refused_for_good(exc):
                    raise
                logger.info("Order %s: Stripe refused to cancel its transfer: %s", order.pk, exc)
            session = stripe_api.checkout_session_retrieve(session_id)
    except stripe_api.StripeError as exc:
        logger.info("Order %s: giving up on its transfer must wait for Stripe: %s", order.pk, exc)
        return order
    if unpaid_intent_status(session) == "canceled":
        delayed_payment_failed(
            order_id=order.pk,
            session=session,
            problem=TIMED_OUT.format(days=settings.DELAYED_PAYMENT_MAX_DAYS),
            template="order_payment_late",
        )
        order.refresh_from_db()
        return order
    # Paid (fulfilled), bounced (failed), or still on its way after a refusal (kept).
    try:
        return session_fulfil(session=session) or order
    except stripe_api.StripeError as exc:
        logger.info("Order %s: fulfilment must wait for Stripe: %s", order.pk, exc)
        return order


def checkout_session_expired(*, session_id: str) -> bool:
    """Stripe expired the session: release its order's reservation."""
    order = Order.objects.filter(stripe_session_id=session_id).first()
    return order is not None and order_release(order_id=order.pk)


def checkout_session_payment_failed(*, session_id: str) -> bool:
    """Stripe's event says a delayed payment (a bank transfer) failed after Checkout
    completed. Only a trigger: the session is read again, and the order is failed (its hold
    released, the shopper emailed) only if Stripe says so; a paid or refunded order is left as
    it is. True if the order is failed."""
    order = fulfil_checkout_session(session_id=session_id)
    return order is not None and order.status == Order.Status.FAILED


def reservations_release_expired() -> int:
    """Settle pending orders whose hold has run out, even if Stripe's event never comes, and
    look at delayed payments whose next look is due.

    Each is settled with Stripe first (a paid one is fulfilled, not released); returns how
    many were released. A delayed payment's next look is moved on before Stripe is asked, so
    a Stripe outage, or two sweeps at once, never makes it asked more often. One older than
    DELAYED_PAYMENT_MAX_DAYS is given up on (`delayed_payment_give_up`).
    """
    now = timezone.now()
    due = list(
        Order.objects.filter(status=Order.Status.PENDING, reserved_until__lte=now).order_by(
            "reserved_until"
        )
    )
    overdue: set[int] = set()
    for order in Order.objects.filter(
        status=Order.Status.PROCESSING, stripe_check_at__lte=now
    ).order_by("stripe_check_at"):
        next_check = delayed_payment_next_check(order=order, now=now)
        if Order.objects.filter(
            pk=order.pk, status=Order.Status.PROCESSING, stripe_check_at=order.stripe_check_at
        ).update(stripe_check_at=next_check):
            due.append(order)
            if delayed_payment_overdue(order=order, now=now):
                overdue.add(order.pk)
    released = 0
    for order in due:
        try:
            if order.pk in overdue:
                settled = delayed_payment_give_up(order=order)
            else:
                settled = order_settle_with_stripe(order=order)
        except Exception:  # one order's trouble must not stall every order after it
            logger.exception("Sweep: order %s could not be settled", order.pk)
            continue
        if settled.status == Order.Status.EXPIRED:
            released += 1
    return released
