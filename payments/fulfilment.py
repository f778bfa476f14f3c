"""Fulfilment: a paid Checkout Session becomes a paid order, exactly once. Where money meets
stock.

`fulfil_checkout_session` is called by the worker for `checkout.session.completed` (and
`async_payment_succeeded`), by the success page, by reconciliation and by the sweep
(payments.settle); whichever runs first does the work. Stock is taken with a conditional
UPDATE per line (store.reservations.stock_take), so it never goes below zero; a paid order
that cannot be filled is marked `refund_pending` and refunded by a queued task, outside any
transaction (payments.unfilled). The payment's refunds and disputes are read from Stripe as
the order is filled (payments.refund_sync): one refunded in full before the shop saw it is
recorded refunded, its stock untouched. A session completed with a delayed payment is
handed to payments.delayed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from cart.services import cart_remove_products
from payments import shipping, signals, stripe_api
from payments.delayed import delayed_payment_on_its_way
from payments.emails import order_email
from payments.models import Order, OrderEvent, reservation_holder
from payments.orders import order_cart_lock, order_for_session
from payments.queue import retry_later
from payments.refund_sync import payment_apply, payment_read
from payments.unfilled import order_refund_unfilled
from store.reservations import reservations_release, stock_take

logger = logging.getLogger(__name__)

# What fulfilment has already decided: calling it again returns the order as it is.
FULFILLED = (
    Order.Status.PAID,
    Order.Status.REFUND_PENDING,
    Order.Status.REFUNDED,
    Order.Status.PARTIALLY_REFUNDED,
)
# Checkout is over for these: the order has left its cart (paid, or its payment on its way).
CHECKED_OUT = (*FULFILLED, Order.Status.PROCESSING)


def fulfil_checkout_session(*, session_id: str) -> Order | None:
    """Fulfil a paid Checkout Session exactly once; returns its order, or None.

    None means "not completed (yet)" or "not one of ours". A session completed with a delayed
    payment is not paid yet: its order is returned "processing" (or "failed", once Stripe
    says the payment failed; see payments.delayed). Safe to call any number of times at
    once (webhook, success page, retries): the order row is locked and a paid or refunded
    order is returned as it is. Raises stripe_api.StripeError if Stripe cannot be asked (before
    anything is written). An order that cannot be filled is marked and its refund queued.
    """
    return session_fulfil(session=stripe_api.checkout_session_retrieve(session_id))


def session_fulfil(*, session: dict[str, Any]) -> Order | None:
    """`fulfil_checkout_session` for a session just retrieved from Stripe (never a payload)."""
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        if session.get("status") == "complete":
            return delayed_payment_on_its_way(session=session)
        return None
    order = order_for_session(session)
    if order is None:
        return None
    # Amounts, address and code as Stripe reports them (may ask Stripe: no transaction yet).
    reported = shipping.session_details(session)
    # Refunds and disputes made before the shop saw the payment (in Stripe's dashboard while
    # its events were lost): read now, applied with the fill (payments.refund_sync).
    intent = stripe_api.stripe_id_of(session.get("payment_intent"))
    at_stripe = payment_read(intent) if intent and order.status not in FULFILLED else None
    given_back = (
        at_stripe is not None and at_stripe.refunded() >= (session.get("amount_total") or 0) > 0
    )

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status in FULFILLED:
            return order
        # Its lines left the cart when Checkout completed; what is there now is new shopping.
        in_cart = order.status != Order.Status.PROCESSING
        if order.cart_id is not None and in_cart:
            order_cart_lock(order.cart_id)
        lines = list(order.lines.select_related("product").order_by("product_id"))
        ids = [line.product_id for line in lines]
        details = session.get("customer_details") or {}
        order.email = details.get("email") or session.get("customer_email") or order.email
        order.amount_total = session.get("amount_total") or 0
        order.currency = session.get("currency") or order.currency
        order.stripe_payment_intent_id = stripe_api.stripe_id_of(session.get("payment_intent"))
        for field, value in reported.items():
            setattr(order, field, value)

        if order.kind == Order.Kind.GOODS and given_back:  # nothing to send: stock stays
            reservations_release(holders=[reservation_holder(order.pk)])
        elif order.kind == Order.Kind.GOODS:
            # Taken whether or not this order's hold is still live, and without counting
            # other shoppers' holds (see stock_take): the payer's money is in hand. A later
            # holder whose units this takes is refunded, and told, when their payment comes:
            # their own take below finds the stock short.
            holder = reservation_holder(order.pk)
            short = stock_take(
                holder=holder, quantities={line.product_id: line.quantity for line in lines}
            )
            if short is not None:
                reservations_release(holders=[holder])
                _order_refund(
                    order=order,
                    problem=f"{short.product}: {short.wanted} paid for, only {short.stock} in "
                    "stock when the payment arrived.",
                )
                if at_stripe is not None:
                    payment_apply(order=order, at_stripe=at_stripe)
                return order

        order.status = Order.Status.PAID
        order.paid_at = timezone.now()
        order.problem = ""
        order.save()
        OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.PAID, amount=order.amount_total)
        if order.cart_id is not None and in_cart:
            cart_remove_products(cart_id=order.cart_id, product_ids=ids)
        if not given_back:
            # In the transaction: what receivers grant commits with "paid" (payments.signals).
            signals.order_paid.send(sender=Order, order=order)
            order_email(order=order, template="order_confirmation")
        if at_stripe is not None:
            payment_apply(order=order, at_stripe=at_stripe)
    return order


def _order_refund(*, order: Order, problem: str) -> None:
    """A paid order that cannot be filled: record why and queue its refund.

    The refund itself is asked for by `order_refund_unfillable`, outside any transaction,
    retried with back-off while Stripe fails; the order is marked refunded, and the shopper
    told, only with Stripe's answer.
    """
    order.status = Order.Status.REFUND_PENDING
    order.problem = f"Not filled, refund under way: {problem}"
    order.save()
    logger.warning("Order %s cannot be filled, refund queued: %s", order.pk, problem)
    order_refund_unfillable.enqueue(order_id=order.pk)


@task()
def order_refund_unfillable(*, order_id: int, attempt: int = 1) -> None:
    """The unfilled order's refund (payments.unfilled), retried with back-off while Stripe
    gives no answer; once the retries run out the periodic look (payments.money_look) goes
    on asking, so nothing depends on this task's survival."""
    try:
        settled = order_refund_unfilled(order_id=order_id)
    except stripe_api.StripeError as exc:
        retry_later(order_refund_unfillable, attempt=attempt, error=exc, order_id=order_id)
        return
    if not settled:
        error = RuntimeError(f"Order {order_id}: no answer from Stripe about its refund yet")
        retry_later(order_refund_unfillable, attempt=attempt, error=error, order_id=order_id)
