"""Delayed payments (bank transfers): Checkout completes with `payment_status` "unpaid" and
the money comes days later, or never.

The order then becomes "processing" at once: its lines leave the cart as on a paid order (the
browser can shop and check out again; one open Checkout per cart counts pending orders only),
and its stock stays held until Stripe says the payment succeeded (fulfilled as any paid
order, payments.fulfilment) or failed (released, the order failed, the shopper emailed).
Stripe's events say which; the sweep asks Stripe itself only as a backstop for lost events,
less and less often (`delayed_payment_next_check`).

A transfer the shopper never sends stays unpaid at Stripe for ever, so the hold is capped:
once the order is `DELAYED_PAYMENT_MAX_DAYS` old (counted from `created_at`, when Checkout
started), the sweep's next look gives up on it (`payments.settle.delayed_payment_give_up`).
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
from store.reservations import reservations_extend

logger = logging.getLogger(__name__)

# A delayed payment on its way holds its stock this far ahead, renewed at each look: long
# enough that no transfer outlives it while the worker runs, so in effect "until Stripe says"
# (or until the sweep gives up on it, DELAYED_PAYMENT_MAX_DAYS after checkout).
DELAYED_HOLD = timedelta(days=90)
# The sweep's looks at a delayed payment: a quarter of the order's age apart, within these.
DELAYED_CHECK_MIN = timedelta(minutes=10)
DELAYED_CHECK_MAX = timedelta(hours=6)
# A delayed payment's PaymentIntent in these will never bring the money (the transfer
# bounced and Checkout offers no other method; or it was canceled).
DELAYED_FAILED = ("requires_payment_method", "canceled")
BOUNCED = "The payment failed after checkout (the bank transfer did not arrive)."
TIMED_OUT = (
    "The payment did not arrive in time: no bank transfer came within {days} days of "
    "checkout, so it was canceled."
)


def delayed_payment_next_check(*, order: Order, now: datetime) -> datetime:
    """When the sweep next asks Stripe about an order whose payment is on its way.

    Its events (or reconcile, reading back lost ones) normally bring the outcome, so the
    sweep's look is only a backstop: a quarter of the order's age from now, at least
    DELAYED_CHECK_MIN and at most DELAYED_CHECK_MAX. The gaps grow by a quarter each look:
    about 30 looks over a 5-day transfer, instead of one per sweep (every 30 s) forever.
    """
    gap = (now - order.created_at) / 4
    return now + min(max(gap, DELAYED_CHECK_MIN), DELAYED_CHECK_MAX)


def delayed_payment_on_its_way(*, session: dict[str, Any]) -> Order | None:
    """A completed session whose payment is not in yet (a bank transfer): returns its order.

    Stripe says it failed (its PaymentIntent wants another method, or was canceled): the
    order fails, its hold is released and the shopper told. Otherwise it is on its way: a
    pending order becomes "processing" and leaves its cart (its products are removed from the
    cart, as when paid), and its hold is renewed DELAYED_HOLD ahead, until Stripe says.
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
        if order.kind == Order.Kind.GOODS:
            reservations_extend(holder=reservation_holder(order.pk), expires_at=now + DELAYED_HOLD)
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


def delayed_payment_overdue(*, order: Order, now: datetime) -> bool:
    """Has this delayed payment held its stock as long as it may (DELAYED_PAYMENT_MAX_DAYS)?"""
    return order.created_at <= now - timedelta(days=settings.DELAYED_PAYMENT_MAX_DAYS)


def unpaid_intent_status(session: dict[str, Any]) -> str | None:
    """The status of a complete, unpaid session's PaymentIntent; None for any other session."""
    intent = session.get("payment_intent")
    if session.get("status") != "complete" or session.get("payment_status") != "unpaid":
        return None
    return (intent.get("status") if isinstance(intent, dict) else None) or ""
