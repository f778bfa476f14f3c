"""Checkout and fulfilment: where money meets stock.

A pending goods order holds its stock with store reservations under the key
`reservation_holder(order.pk)`, until `reserved_until`. Store's services do the locking
(products in primary-key order, so two checkouts, or a checkout and a fulfilment, never
deadlock) and take stock with a conditional UPDATE, so it never goes below zero. An order
leaves "pending" and gives its reservation back through one path, `_orders_release`:
checkout failure, cancel, Stripe's expiry event and the sweep all use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from cart.models import Cart
from cart.services import cart_remove_products
from payments import shipping, signals, stripe_api
from payments.models import Order, OrderEvent, OrderLine, reservation_holder
from store.models import Product
from store.reservations import (
    ReservationError,
    products_lock,
    reservation_create,
    reservations_release,
    stock_take,
)

logger = logging.getLogger(__name__)

# Stripe wants `expires_at` at least 30 minutes after it receives the request: the slack
# covers the time between our clock reading and Stripe's, so the reservation and the
# session end at the same second.
EXPIRES_SLACK = timedelta(minutes=1)


class CheckoutError(Exception):
    """Checkout could not start; `message` is meant for the shopper."""

    def __init__(self, message: str, *, order: Order | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.order = order


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class CheckoutStarted:
    order: Order
    url: str


def _lines_from_cart(cart: Cart) -> list[LineRequest]:
    return [
        LineRequest(product_id=product_id, quantity=quantity)
        for product_id, quantity in cart.items.order_by("product_id").values_list(
            "product_id", "quantity"
        )
    ]


def _merge(lines: list[LineRequest]) -> dict[int, int]:
    wanted: dict[int, int] = {}
    for line in lines:
        if line.quantity < 1:
            raise CheckoutError("Every quantity must be at least 1.")
        wanted[line.product_id] = wanted.get(line.product_id, 0) + line.quantity
    return wanted


def _order_reserve(
    *,
    user: AbstractBaseUser | AnonymousUser | None,
    cart: Cart | None,
    wanted: dict[int, int],
    kind: str,
    email: str,
) -> Order:
    """Lock the products, check them, create the pending order and reserve its stock."""
    ids = sorted(wanted)
    with transaction.atomic():
        # Locks in pk order: the same order in every writer, so no deadlock.
        products = products_lock(ids)
        sellable = Product.objects.visible() if kind == Order.Kind.GOODS else Product.objects
        sellable_ids = set(
            sellable.filter(pk__in=ids, active=True, price__active=True).values_list(
                "pk", flat=True
            )
        )
        found = {p.pk for p in products}
        if found != set(ids) or sellable_ids != set(ids):
            missing = [p.name for p in products if p.pk not in sellable_ids]
            if missing:
                raise CheckoutError(f"{', '.join(missing)} is no longer for sale: remove it.")
            raise CheckoutError("A product in your cart is no longer for sale.")
        currencies = {p.price.currency for p in products if p.price}
        if len(currencies) != 1:
            raise CheckoutError(
                "Your cart has prices in different currencies "
                f"({', '.join(sorted(c.upper() for c in currencies))}): "
                "check out one currency at a time."
            )
        user_obj = user if user is not None and user.is_authenticated else None
        order = Order.objects.create(
            user=user_obj,
            cart=cart,
            kind=kind,
            email=email or (getattr(user_obj, "email", "") or ""),
            currency=currencies.pop(),
            amount_total=sum(
                (p.price.unit_amount or 0) * wanted[p.pk] for p in products if p.price
            ),
            reserved_until=timezone.now()
            + timedelta(minutes=settings.CHECKOUT_RESERVATION_MINUTES)
            + EXPIRES_SLACK,
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product=product,
                stripe_price_id=product.price.stripe_id,  # type: ignore[union-attr]
                quantity=wanted[product.pk],
                unit_amount=product.price.unit_amount or 0,  # type: ignore[union-attr]
                currency=product.price.currency,  # type: ignore[union-attr]
            )
            for product in products
        )
        if kind == Order.Kind.GOODS:
            try:
                reservation_create(
                    holder=reservation_holder(order.pk),
                    quantities=wanted,
                    expires_at=order.reserved_until,  # type: ignore[arg-type]
                )
            except ReservationError as exc:
                raise CheckoutError(exc.message) from exc
    return order


def checkout_start(
    *,
    user: AbstractBaseUser | AnonymousUser | None,
    cart: Cart | None = None,
    lines: list[LineRequest] | None = None,
    kind: str = Order.Kind.GOODS,
    email: str = "",
) -> CheckoutStarted:
    """Reserve the stock, create the pending order, then its Checkout Session.

    `lines` defaults to the cart's. Access orders (`kind="access"`) hold no stock. Raises
    CheckoutError with a message for the shopper; the cart is never changed here.
    """
    if lines is None:
        lines = _lines_from_cart(cart) if cart is not None else []
    if not lines:
        raise CheckoutError("Your cart is empty.")
    wanted = _merge(lines)
    order = _order_reserve(user=user, cart=cart, wanted=wanted, kind=kind, email=email)

    try:
        goods = order.kind == Order.Kind.GOODS
        session = stripe_api.checkout_session_create(
            line_items=[(line.stripe_price_id, line.quantity) for line in order.lines.all()],
            order_id=order.pk,
            customer_email=order.email,
            expires_at=int(order.reserved_until.timestamp()),  # type: ignore[union-attr]
            success_url=f"{settings.SITE_URL}/checkout/success/?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{settings.SITE_URL}/checkout/cancel/?session_id={{CHECKOUT_SESSION_ID}}",
            automatic_tax=settings.STRIPE_AUTOMATIC_TAX,
            idempotency_key=f"amazin-checkout-order-{order.pk}",
            # Goods are shipped: Checkout collects an address and a rate. The pass is not.
            shipping_countries=shipping.shipping_countries() if goods else None,
            shipping_rate_ids=shipping.shipping_rate_ids(currency=order.currency)
            if goods
            else None,
            allow_promotion_codes=settings.STRIPE_ALLOW_PROMOTION_CODES,
        )
    except stripe_api.StripeError as exc:
        logger.warning("Checkout Session for order %s failed: %s", order.pk, exc)
        _orders_release(
            [order.pk],
            status=Order.Status.FAILED,
            problem=f"Checkout Session not created: {exc}"[:2000],
        )
        order.refresh_from_db()
        raise CheckoutError(
            "We could not reach our payment provider, so nothing was charged and your cart "
            "is as it was. Please try again in a moment.",
            order=order,
        ) from exc

    order.stripe_session_id = session["id"]
    order.save(update_fields=["stripe_session_id"])
    return CheckoutStarted(order=order, url=session["url"])


def _order_for_session(session: dict[str, Any]) -> Order | None:
    """Our order for this session: the reference, the metadata and the stored id must agree."""
    reference = session.get("client_reference_id") or (session.get("metadata") or {}).get(
        "order_id"
    )
    metadata_id = (session.get("metadata") or {}).get("order_id")
    if not reference or (metadata_id and str(metadata_id) != str(reference)):
        return None
    try:
        pk = int(reference)
    except (TypeError, ValueError):
        return None
    return Order.objects.filter(pk=pk, stripe_session_id=session.get("id") or "-").first()


def stripe_id_of(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def fulfil_checkout_session(*, session_id: str) -> Order | None:
    """Fulfil a paid Checkout Session exactly once; returns its order, or None.

    None means "not paid (yet)" or "not one of ours". Safe to call any number of times at
    once (webhook, success page, retries): the order row is locked and a paid or refunded
    order is returned as it is. Raises stripe_api.StripeError if Stripe cannot be asked,
    and when an unfillable order's refund fails, so that the webhook answers 500 and Stripe
    retries: in that case nothing at all was written.
    """
    session = stripe_api.checkout_session_retrieve(session_id)
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return None
    order = _order_for_session(session)
    if order is None:
        return None
    # Amounts, address and code as Stripe reports them (may ask Stripe: no transaction yet).
    reported = shipping.session_details(session)

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status in (
            Order.Status.PAID,
            Order.Status.REFUNDED,
            Order.Status.PARTIALLY_REFUNDED,
        ):
            return order
        lines = list(order.lines.select_related("product").order_by("product_id"))
        ids = [line.product_id for line in lines]
        details = session.get("customer_details") or {}
        order.email = details.get("email") or session.get("customer_email") or order.email
        order.amount_total = session.get("amount_total") or 0
        order.currency = session.get("currency") or order.currency
        order.stripe_payment_intent_id = stripe_id_of(session.get("payment_intent"))
        for field, value in reported.items():
            setattr(order, field, value)

        if order.kind == Order.Kind.GOODS:
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
                return order

        order.status = Order.Status.PAID
        order.paid_at = timezone.now()
        order.problem = ""
        order.save()
        OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.PAID, amount=order.amount_total)
        if order.cart_id is not None:
            cart_remove_products(cart_id=order.cart_id, product_ids=ids)
        # In the transaction: what receivers grant commits with "paid" (see payments.signals).
        signals.order_paid.send(sender=Order, order=order)
        transaction.on_commit(lambda: order_email_confirmation(order=order), robust=True)
    return order


def _order_refund(*, order: Order, problem: str) -> None:
    """A paid order that cannot be filled: refund it in full, record why, tell the shopper.

    The refund is asked for inside the transaction (the order row stays locked), with an
    idempotency key per order: if Stripe fails, the exception rolls everything back and the
    next call (Stripe's webhook retry) asks again, getting the same refund if the first
    request did reach Stripe.
    """
    try:
        refund = stripe_api.refund_create(
            payment_intent=order.stripe_payment_intent_id,
            order_id=order.pk,
            idempotency_key=f"amazin-refund-order-{order.pk}",
        )
    except stripe_api.StripeError as exc:
        logger.error(
            "Order %s cannot be filled (%s) and its refund failed: %s", order.pk, problem, exc
        )
        raise
    order.status = Order.Status.REFUNDED
    order.problem = f"Not filled, refunded: {problem}"
    order.stripe_refund_id = refund.get("id") or ""
    order.save()
    logger.warning("Order %s refunded: %s", order.pk, problem)
    transaction.on_commit(lambda: order_email_refunded(order=order), robust=True)


def _orders_release(
    order_ids: list[int], *, status: str = Order.Status.EXPIRED, problem: str = ""
) -> int:
    """Pending orders leave "pending" and give back their reservations; returns how many did.

    The one release path (checkout failure, cancel, expiry event, sweep). Only orders still
    pending change: a fulfilment that won an order's row meanwhile keeps it (the row lock
    makes the status check and the change one step).
    """
    with transaction.atomic():
        pending = list(
            Order.objects.select_for_update()
            .filter(pk__in=order_ids, status=Order.Status.PENDING)
            .values_list("pk", flat=True)
        )
        if not pending:
            return 0
        changes = {"status": status} | ({"problem": problem} if problem else {})
        Order.objects.filter(pk__in=pending).update(**changes)
        reservations_release(holders=[reservation_holder(pk) for pk in pending])
    return len(pending)


def order_release(*, order_id: int) -> bool:
    """A pending order gives up its reservation (expired or cancelled). True if it changed."""
    return bool(_orders_release([order_id]))


def checkout_session_expired(*, session_id: str) -> bool:
    """Stripe expired the session: release its order's reservation."""
    order = Order.objects.filter(stripe_session_id=session_id).first()
    return order is not None and order_release(order_id=order.pk)


def checkout_cancel(*, session_id: str) -> Order | None:
    """The shopper came back from Checkout without paying: free the stock at once."""
    order = Order.objects.filter(stripe_session_id=session_id).first()
    if order is None or order.status != Order.Status.PENDING:
        return order
    try:
        stripe_api.checkout_session_expire(session_id)
    except stripe_api.StripeError as exc:
        # Already expired or complete (then fulfilment still applies), or Stripe is down
        # (then it expires the session itself at `expires_at`).
        logger.info("Expiring session %s: %s", session_id, exc)
    order_release(order_id=order.pk)
    order.refresh_from_db()
    return order


def order_refunded(*, payment_intent_id: str) -> Order | None:
    """Stripe says the payment was refunded in full (by us, or by staff in the dashboard)."""
    if not payment_intent_id:
        return None
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .filter(stripe_payment_intent_id=payment_intent_id)
            .first()
        )
        if order is None:
            return None
        if order.status != Order.Status.REFUNDED:
            order.status = Order.Status.REFUNDED
            order.save(update_fields=["status"])
        # In the transaction: what receivers revoke commits with "refunded".
        signals.order_refunded.send(sender=Order, order=order)
    return order


def reservations_release_expired() -> int:
    """Expire pending orders whose hold has run out, even if Stripe's event never comes."""
    due = list(
        Order.objects.filter(
            status=Order.Status.PENDING, reserved_until__lte=timezone.now()
        ).values_list("pk", flat=True)
    )
    return _orders_release(due) if due else 0


def _send(*, order: Order, template: str, subject: str) -> None:
    if not order.email:
        logger.warning("Order %s has no email address; %s not sent", order.pk, template)
        return
    context = {
        "order": order,
        "lines": list(order.lines.select_related("product")),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        to=[order.email],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    message.send()


def order_email_confirmation(*, order: Order) -> None:
    _send(order=order, template="order_confirmation", subject=f"Your Amazin order #{order.pk}")


def order_email_refunded(*, order: Order) -> None:
    _send(
        order=order,
        template="order_refunded",
        subject=f"Your Amazin order #{order.pk} could not be filled and was refunded",
    )
