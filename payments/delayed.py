"""Delayed payments (bank transfers): Checkout completes with `payment_status` "unpaid" and
the money comes days later, or never.

The order then becomes "processing" at once: its lines leave the cart as on a paid order (the
browser can shop and check out again; one open Checkout per cart counts pending orders only),
and its stock stays held until Stripe says the payment succeeded (fulfilled as any paid
order, payments.fulfilment) or failed (released, the order failed, the shopper emailed).
Stripe's events say which; the sweep asks Stripe itself only as a backstop for lost events,
less and less often (`delayed_payment_next_check`).

A transfer the shopper never sends stays unpaid at Stripe for ever, and Stripe refuses to
cancel a Checkout Session's PaymentIntent (only one awaiting capture can be), so the shop
cannot end it there. What the shop can end is its own hold: the stock is held for
`DELAYED_PAYMENT_HOLD_HOURS` after checkout started (`created_at`), the reservation's own
expiry, so the units go back on sale on time even with no worker running. The sweep's look at
that moment (`delayed_payment_hold_ended`) drops the reservation and tells the shopper; the
order stays "processing", awaiting its money. Money that arrives later is fulfilled as any
payment is (payments.fulfilment): filled if the stock is there, otherwise refunded in full
automatically and the shopper told. Nothing paid is ever dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cart.services import cart_remove_products
from payments import stripe_api
from payments.emails import order_email
from payments.models import Order, reservation_holder
from payments.orders import order_cart_lock, order_for_session, orders_release
from store.reservations import reservations_extend, reservations_release

logger = logging.getLogger(__name__)

# The sweep's looks at a delayed payment: a quarter of the order's age apart, within these.
DELAYED_CHECK_MIN = timedelta(minutes=10)
DELAYED_CHECK_MAX = timedelta(hours=6)
# Once the hold has ended nothing waits on the look but the money itself (its events, and
# reconcile for lost ones, bring it): a look a day is backstop enough.
DELAYED_CHECK_MAX_UNHELD = timedelta(days=1)
# A delayed payment's PaymentIntent in these will never bring the money (the transfer
# bounced and Checkout offers no other method; or it was canceled).
DELAYED_FAILED = ("requires_payment_method", "canceled")
BOUNCED = "The payment failed after checkout (the bank transfer did not arrive)."
HOLD_ENDED = (
    "The bank transfer had not arrived {hours} hours after checkout: the items went back on "
    "sale. If the money still comes, the order is filled if they are in stock, else refunded."
)


def delayed_payment_next_check(*, order: Order, now: datetime) -> datetime:
    """When the sweep next asks Stripe about an order whose payment is on its way.

    Its events (or reconcile, reading back lost ones) normally bring the outcome, so the
    sweep's look is only a backstop: a quarter of the order's age from now, at least
    DELAYED_CHECK_MIN and at most DELAYED_CHECK_MAX (DELAYED_CHECK_MAX_UNHELD once the hold
    has ended), and never later than the end of the hold, when the shopper is told. The gaps
    grow by a quarter each look: about 30 looks over a 5-day transfer, not one per sweep.
    """
    gap = (now - order.created_at) / 4
    hold_end = delayed_payment_hold_end(order)
    if now >= hold_end:
        return now + min(max(gap, DELAYED_CHECK_MIN), DELAYED_CHECK_MAX_UNHELD)
    return min(now + min(max(gap, DELAYED_CHECK_MIN), DELAYED_CHECK_MAX), hold_end)


def delayed_payment_hold_end(order: Order) -> datetime:
    """When a delayed payment's stock goes back on sale: DELAYED_PAYMENT_HOLD_HOURS after
    its checkout started."""
    return order.created_at + timedelta(hours=settings.DELAYED_PAYMENT_HOLD_HOURS)


def delayed_payment_on_its_way(*, session: dict[str, Any]) -> Order | None:
    """A completed session whose payment is not in yet (a bank transfer): returns its order.

    Stripe says it failed (its PaymentIntent wants another method, or was canceled): the
    order fails, its hold is released and the shopper told. Otherwise it is on its way: a
    pending order becomes "processing" and leaves its cart (its products are removed from the
    cart, as when paid), and its hold is made to last until `delayed_payment_hold_end`.
    """
    order = order_for_session(session)
    if order is None:
        return None
    intent = session.get("payment_intent")
    if isinstance(intent, dict) and intent.get("status") in DELAYED_FAILED:
        delayed_payment_failed(order_id=order.pk, session=session)
        order.refresh_from_db()
        return order
    now = timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status not in (Order.Status.PENDING, Order.Status.PROCESSING):
            return order
        order.stripe_check_at = delayed_payment_next_check(order=order, now=now)
        if order.cart_id is not None and order.status == Order.Status.PENDING:
            order_cart_lock(order.cart_id)
        if order.kind == Order.Kind.GOODS and order.status == Order.Status.PENDING:
            # Later only, and to the hold's end at most (DELAYED_PAYMENT_HOLD_HOURS after the
            # order): once that end has passed (the shop heard of the checkout late), no hold
            # comes back.
            reservations_extend(
                holder=reservation_holder(order.pk), expires_at=delayed_payment_hold_end(order)
            )
        if order.status == Order.Status.PENDING:
            details = session.get("customer_details") or {}
            order.email = details.get("email") or session.get("customer_email") or order.email
            order.stripe_payment_intent_id = stripe_api.stripe_id_of(intent)
            order.status = Order.Status.PROCESSING
            if order.cart_id is not None:
                cart_remove_products(
                    cart_id=order.cart_id,
                    product_ids=list(order.lines.values_list("product_id", flat=True)),
                )
            logger.info("Order %s: checkout complete, payment on its way", order.pk)
        order.save()
    return order


def delayed_payment_failed(
    *,
    order_id: int,
    session: dict[str, Any],
    problem: str = BOUNCED,
    template: str = "order_payment_failed",
) -> bool:
    """Stripe says the delayed payment will never come: fail the order, free its stock, and
    tell the shopper (once: only the call that moves the order sends the email)."""
    details = session.get("customer_details") or {}
    with transaction.atomic():
        failed = orders_release(
            [order_id],
            status=Order.Status.FAILED,
            problem=problem,
            releasable=(Order.Status.PENDING, Order.Status.PROCESSING),
        )
        if failed:
            order = Order.objects.get(pk=order_id)
            if not order.email and details.get("email"):
                order.email = details["email"]
                order.save(update_fields=["email"])
            order_email(order=order, template=template)
    return bool(failed)


def delayed_payment_hold_ended(*, order_id: int) -> bool:
    """The hold of a delayed payment still on its way is over (Stripe was just asked): drop
    its reservation, note it for staff and tell the shopper. The order stays "processing":
    money that comes later is fulfilled if the stock is there, or refunded. True if the hold
    was dropped now (only that call emails, so the shopper is told once)."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .filter(pk=order_id, status=Order.Status.PROCESSING)
            .first()
        )
        if order is None or order.kind != Order.Kind.GOODS:
            return False
        if not reservations_release(holders=[reservation_holder(order.pk)]):
            return False
        order.problem = HOLD_ENDED.format(hours=settings.DELAYED_PAYMENT_HOLD_HOURS)
        order.save(update_fields=["problem"])
        order_email(order=order, template="order_hold_ended")
    logger.info("Order %s: transfer not arrived, its hold ended", order_id)
    return True


def unpaid_intent_status(session: dict[str, Any]) -> str | None:
    """The status of a complete, unpaid session's PaymentIntent; None for any other session."""
    intent = session.get("payment_intent")
    if session.get("status") != "complete" or session.get("payment_status") != "unpaid":
        return None
    return (intent.get("status") if isinstance(intent, dict) else None) or ""
