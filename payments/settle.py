"""Settling an order with Stripe: do what Stripe says its session is, never more.

A pending order whose shopper left (cancel), whose time ran out (the sweep) or whose cart
changed, and a delayed payment the sweep looks at, are settled here: Stripe is asked first,
outside any transaction, and the order follows its answer (fulfilled, released, or left as it
is while Stripe cannot be asked). Nothing is released on a guess.

A delayed payment whose hold is over (payments.delayed) is looked at the same way: Stripe is
asked first, and only an order Stripe still says is on its way has its hold ended.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from payments import stripe_api
from payments.delayed import (
    delayed_payment_hold_end,
    delayed_payment_hold_ended,
    delayed_payment_next_check,
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


def delayed_payment_look(*, order: Order) -> Order:
    """The sweep's look at a delayed payment: settle as Stripe says (paid: fulfilled; bounced:
    failed), and once its hold is over, end the hold of one still on its way. Stripe not
    answering changes nothing (the reservation still runs out by itself on time)."""
    try:
        session = stripe_api.checkout_session_retrieve(order.stripe_session_id or "")
        settled = session_fulfil(session=session) or order
    except stripe_api.StripeError as exc:
        logger.info("Order %s: its look must wait for Stripe: %s", order.pk, exc)
        return order
    if settled.status == Order.Status.PROCESSING and timezone.now() >= delayed_payment_hold_end(
        settled
    ):
        delayed_payment_hold_ended(order_id=settled.pk)
        settled.refresh_from_db()
    return settled


def checkout_session_expired(*, session_id: str) -> bool:
    """Stripe's event says the session expired. Only a trigger, as every event: the session
    is read again, and the order's stock is released only if Stripe says expired (a complete
    one is fulfilled, an open one left alone). True if the order was released."""
    order = Order.objects.filter(stripe_session_id=session_id).first()
    if order is None or order.status != Order.Status.PENDING:
        return False
    session = stripe_api.checkout_session_retrieve(session_id)
    if session.get("status") == "expired":
        return order_release(order_id=order.pk)
    if session.get("status") == "complete":
        session_fulfil(session=session)
    return False


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
    a Stripe outage, or two sweeps at once, never makes it asked more often; one whose hold
    is over has it ended (`delayed_payment_look`).
    """
    now = timezone.now()
    due = list(
        Order.objects.filter(status=Order.Status.PENDING, reserved_until__lte=now).order_by(
            "reserved_until"
        )
    )
    delayed: set[int] = set()
    for order in Order.objects.filter(
        status=Order.Status.PROCESSING, stripe_check_at__lte=now
    ).order_by("stripe_check_at"):
        next_check = delayed_payment_next_check(order=order, now=now)
        if Order.objects.filter(
            pk=order.pk, status=Order.Status.PROCESSING, stripe_check_at=order.stripe_check_at
        ).update(stripe_check_at=next_check):
            due.append(order)
            delayed.add(order.pk)
    released = 0
    for order in due:
        try:
            if order.pk in delayed:
                settled = delayed_payment_look(order=order)
            else:
                settled = order_settle_with_stripe(order=order)
        except Exception:  # one order's trouble must not stall every order after it
            logger.exception("Sweep: order %s could not be settled", order.pk)
            continue
        if settled.status == Order.Status.EXPIRED:
            released += 1
    return released


def cart_checkout_settle_on_login(*, cart_id: int, user_id: int, target_cart_id: int) -> None:
    """A browser's cart is about to join its user's cart (`target_cart_id`; the same cart when
    it simply changes hands): its open checkout is settled with Stripe first (expired, or
    fulfilled if it was paid), so that the merged cart's next checkout is the only payable
    one. One Stripe cannot settle now moves with the lines, to the user and their cart: the
    next checkout of that cart finds it and expires it before opening another, and the user
    sees it among their orders. Call outside any transaction (Stripe is asked)."""
    for order in Order.objects.filter(cart_id=cart_id, status=Order.Status.PENDING):
        settled = order_settle_with_stripe(order=order)
        if settled.status == Order.Status.PENDING:
            logger.info("Order %s: unsettled at log-in, moved to user %s", order.pk, user_id)
            Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(
                user_id=user_id, cart_id=target_cart_id
            )


def on_cart_merging(sender: Any, cart: Any, user: Any, target: Any, **kwargs: Any) -> None:
    """cart's `cart_merging` (cart never imports payments): see cart_checkout_settle_on_login."""
    cart_checkout_settle_on_login(
        cart_id=cart.pk, user_id=user.pk, target_cart_id=(target or cart).pk
    )
