"""Starting a Checkout: reserve the stock, create the pending order, open its session.

At most one open Checkout per cart: a second tab or a double submit finds the cart's pending
order and is sent to the same session (created once per order, with an idempotency key
derived from the order, so even two requests racing to create it get the same one). A cart
whose contents changed first has its old session expired at Stripe, so Stripe can never
complete two sessions for one cart. An order whose Checkout completed with a bank transfer
still on its way is no longer the cart's ("processing", see payments.delayed): the cart
can check out again at once. What one shopper (address, user, browser) may hold at once, and
how often they may start a checkout, is limited (payments.limits), so nobody can reserve the
whole shop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from cart.models import Cart
from payments import fulfilment, orders, sessions, settle, stripe_api
from payments.limits import LimitReached, Shopper, limits_check
from payments.models import Order, OrderLine, reservation_holder
from store.models import Product
from store.reservations import ReservationError, products_lock, reservation_create

logger = logging.getLogger(__name__)

# Stripe wants `expires_at` at least 30 minutes after it receives the request: the slack
# covers the time between our clock reading and Stripe's, so the reservation and the
# session end at the same second.
EXPIRES_SLACK = timedelta(minutes=1)
# A cart whose old session keeps turning out expired or replaced: give up after this many.
MAX_ROUNDS = 3


class CheckoutError(Exception):
    """Checkout could not start; `message` is meant for the shopper."""

    status = 400

    def __init__(self, message: str, *, order: Order | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.order = order


class CheckoutLimited(CheckoutError):
    """Too much held, or too many checkouts started, from one address: a 429."""

    status = 429


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class CheckoutStarted:
    order: Order
    url: str


class _CartChanged(Exception):
    """The cart has a pending order for other contents: its session must be expired first."""

    def __init__(self, order: Order) -> None:
        self.order = order


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


def _order_contents(order: Order) -> dict[int, int]:
    return dict(order.lines.values_list("product_id", "quantity"))


def _order_reserve(
    *,
    user: User | AnonymousUser | None,
    cart: Cart | None,
    wanted: dict[int, int],
    kind: str,
    email: str,
    client_ip: str,
    from_cart: bool = False,
) -> Order:
    """The cart's pending order for these contents, or a new one with its stock reserved.
    (The members' pass, bought without a cart: the user's pending pass order.)

    The cart row is locked first, so of two checkouts of one cart at once the second waits,
    then finds the first's order. Raises _CartChanged for a pending order of other contents.
    With `from_cart`, the contents are the cart's, read again under that lock: an order
    leaving the cart (paid, or its bank transfer on its way) takes the same lock to remove
    its lines, so a checkout never starts for lines that were just bought.
    """
    with transaction.atomic():
        if cart is not None:
            Cart.objects.select_for_update().filter(pk=cart.pk).first()
            if from_cart:
                wanted = _merge(_lines_from_cart(cart))
                if not wanted:
                    raise CheckoutError("Your cart is empty.")
            pending = Order.objects.filter(cart=cart, status=Order.Status.PENDING).first()
            if pending is not None:
                if _order_contents(pending) == wanted and pending.kind == kind:
                    return pending
                raise _CartChanged(pending)
        user_obj = user if user is not None and user.is_authenticated else None
        if cart is None and kind == Order.Kind.ACCESS and user_obj is not None:
            # The members' pass has no cart: one open checkout per user instead, under the
            # user's row lock (a double click waits here, then finds the first's order).
            User.objects.select_for_update().filter(pk=user_obj.pk).first()
            pending = (
                Order.objects.filter(
                    user=user_obj, cart=None, kind=kind, status=Order.Status.PENDING
                )
                .order_by("-created_at", "-pk")
                .first()
            )
            if pending is not None:
                if _order_contents(pending) == wanted:
                    return pending
                raise _CartChanged(pending)
        shopper = Shopper(
            client_ip=client_ip,
            user_id=user_obj.pk if user_obj is not None else None,
            cart_id=cart.pk if cart is not None else None,
        )
        try:
            limits_check(
                shopper=shopper, units=sum(wanted.values()), holds_stock=kind == Order.Kind.GOODS
            )
        except LimitReached as exc:
            raise CheckoutLimited(exc.message) from None
        ids = sorted(wanted)
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
        reserved_until = (
            timezone.now()
            + timedelta(minutes=settings.CHECKOUT_RESERVATION_MINUTES)
            + EXPIRES_SLACK
        )
        order = Order.objects.create(
            user=user_obj,
            cart=cart,
            kind=kind,
            email=email or (getattr(user_obj, "email", "") or ""),
            client_ip=client_ip or None,
            currency=currencies.pop(),
            amount_total=sum(
                (p.price.unit_amount or 0) * wanted[p.pk] for p in products if p.price
            ),
            reserved_until=reserved_until,
        )
        lines = []
        for product in products:
            price = product.price
            assert price is not None  # every product passed the sellable check (an active price)
            lines.append(
                OrderLine(
                    order=order,
                    product=product,
                    stripe_price_id=price.stripe_id,
                    quantity=wanted[product.pk],
                    unit_amount=price.unit_amount or 0,
                    currency=price.currency,
                )
            )
        OrderLine.objects.bulk_create(lines)
        if kind == Order.Kind.GOODS:
            try:
                reservation_create(
                    holder=reservation_holder(order.pk),
                    quantities=wanted,
                    expires_at=reserved_until,
                )
            except ReservationError as exc:
                raise CheckoutError(exc.message) from exc
    return order


def success_url(session_id: str) -> str:
    return f"{settings.SITE_URL}/checkout/success/?session_id={session_id}"


def checkout_start(
    *,
    user: User | AnonymousUser | None,
    cart: Cart | None = None,
    lines: list[LineRequest] | None = None,
    kind: str = Order.Kind.GOODS,
    email: str = "",
    client_ip: str = "",
) -> CheckoutStarted:
    """Where to send the shopper to pay for the cart (or `lines`): its one open session.

    Access orders (`kind="access"`) hold no stock. Raises CheckoutError (CheckoutLimited for
    a 429) with a message for the shopper; the cart is never changed here. A session that
    turns out already paid sends the shopper to the success page instead.
    """
    for _ in range(MAX_ROUNDS):
        requested = lines if lines is not None else (_lines_from_cart(cart) if cart else [])
        if not requested:
            raise CheckoutError("Your cart is empty.")
        wanted = _merge(requested)
        try:
            order = _order_reserve(
                user=user,
                cart=cart,
                wanted=wanted,
                kind=kind,
                email=email,
                client_ip=client_ip,
                from_cart=lines is None,
            )
        except _CartChanged as changed:
            # Expire the old contents' session at Stripe before anything new can be paid.
            settled = settle.order_settle_with_stripe(order=changed.order)
            if settled.status == Order.Status.PENDING:
                raise CheckoutError(
                    "We could not reach our payment provider to close your earlier checkout, "
                    "so nothing new was started. Please try again in a moment."
                ) from None
            if settled.status == Order.Status.PAID:
                assert settled.stripe_session_id is not None  # paid through its session
                return CheckoutStarted(order=settled, url=success_url(settled.stripe_session_id))
            # Expired, or "processing" (a bank transfer on its way: its lines left the cart,
            # its stock stays held): the cart is free for what is in it now.
            continue
        try:
            session = sessions.order_session(order=order)
        except stripe_api.StripeError as exc:
            logger.warning("Checkout Session for order %s failed: %s", order.pk, exc)
            if not order.stripe_session_id and settle.refused_for_good(exc):
                # Stripe said no: no session exists, nobody can pay. Any other failure (a
                # timeout, a 409 while another request creates it) may have made one: the
                # hold stays, and the next try or the sweep finds it by the same key.
                orders.order_fail(order_id=order.pk, problem=f"Checkout Session not created: {exc}")
            raise CheckoutError(
                "We could not reach our payment provider, so nothing was charged and your "
                "cart is as it was. Please try again in a moment.",
                order=order,
            ) from exc
        if session.get("status") == "open" and session.get("url"):
            return CheckoutStarted(order=order, url=session["url"])
        # Paid in another tab, or run out: settle it as Stripe says, then start afresh.
        settled = settle.order_settle_with_stripe(order=order)
        if settled.status in fulfilment.CHECKED_OUT:
            return CheckoutStarted(order=settled, url=success_url(session["id"]))
        if settled.status == Order.Status.PENDING:
            raise CheckoutError("Your checkout is still being processed: try again in a moment.")
    raise CheckoutError("Your cart changed while checking out: please try again.")
