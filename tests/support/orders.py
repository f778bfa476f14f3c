"""Orders as checkout and Stripe leave them, for tests that start past the checkout step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from cart.models import Cart
from cart.selectors import SESSION_CART_ID
from payments.models import Order, reservation_holder
from store.models import Product
from tests.factories import CartFactory, OrderFactory, OrderLineFactory, ReservationFactory


def browser_cart(client: Client) -> Cart:
    """A cart that belongs to `client`'s browser (its session), as adding to it would make."""
    cart = CartFactory.create()
    session = client.session
    session[SESSION_CART_ID] = cart.pk
    session.save()
    return cart


def pending_order(*pairs: tuple[Product, int], minutes: float = 30, **fields: Any) -> Order:
    """A pending order as `checkout_start` leaves it: a line per (product, quantity) and, for
    goods, the stock reserved under the order's key until `reserved_until` (now + minutes)."""
    order = OrderFactory.create(
        reserved_until=timezone.now() + timedelta(minutes=minutes), **fields
    )
    for product, quantity in pairs:
        OrderLineFactory(order=order, product=product, quantity=quantity)
        if order.kind == Order.Kind.GOODS:
            ReservationFactory(
                product=product,
                quantity=quantity,
                holder=reservation_holder(order.pk),
                expires_at=order.reserved_until,
            )
    return order


def paid_session(order: Order, *, payment_status: str = "paid", **fields: Any) -> dict[str, Any]:
    """The order's Checkout Session as Stripe returns it once paid (or `payment_status`)."""
    return {
        "id": order.stripe_session_id,
        "object": "checkout.session",
        "client_reference_id": str(order.pk),
        "metadata": {"order_id": str(order.pk)},
        "payment_status": payment_status,
        "status": "complete" if payment_status == "paid" else "open",
        "amount_total": sum(line.line_total for line in order.lines.all()),
        "currency": order.currency,
        "customer_details": {"email": "payer@example.com"},
        "payment_intent": {"id": f"pi_test_{order.pk}", "object": "payment_intent"},
    } | fields
