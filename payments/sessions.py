"""An order's Checkout Session at Stripe: made once, found again after an error, never two.

Stripe keeps the first answer to an idempotency key for at least 24 hours, errors included:
once a create has been answered with a 500, every retry under its key gets that 500 back (a
cart could not check out for a day). So each order counts its creates
(`Order.checkout_attempt`) and each attempt has its own key; the first keeps the key orders
always had (`Order.idempotency_key("checkout")`), so a request in flight across an upgrade
is still found by it.

An attempt is marked failed (`Order.checkout_attempt_failed`) only once Stripe has
*answered* its create with an error that ends it (`create_over`): a 500, any replayed answer,
or `idempotency_error`. Then no create is still running at Stripe under that key or an older
one, so asking Stripe which sessions exist for the order is conclusive: one found is the
order's (the 500 came after the session was made), and none found means the next key may
create one. A create that got no answer (a timeout, a cut connection, a 409 while the same
key is still running, a 502-504 from something in between) keeps its key, with the same
parameters: asking again with it returns the first request's answer, or runs it if it never
arrived. So no retry can make a second session for an order.

Stripe cannot filter sessions by `client_reference_id`: the sessions created since the
order are listed and matched by `client_reference_id`, `metadata.order_id` and the order's
random token (`metadata.order_token`), which a reset database's order with the same id
lacks. A new attempt, as it starts, moves the order's hold (and so the session's
`expires_at`) to 31 minutes from now, as Stripe wants at least 30, if the hold still runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments import shipping, stripe_api
from payments.models import Order, reservation_holder
from store.reservations import reservations_extend

logger = logging.getLogger(__name__)

# Stripe's clock and ours may differ: a session made for the order may look this much older.
CLOCK_SLACK = timedelta(minutes=5)
# A new attempt's `expires_at` is at least CHECKOUT_RESERVATION_MINUTES (Stripe's minimum, 30)
# and this much from now: the time between our clock reading and Stripe's.
EXPIRES_SLACK = timedelta(minutes=1)
# The order of preference among sessions found for one order: a paid one is the order's.
PREFERRED = {"complete": 0, "open": 1, "expired": 2}


def create_over(exc: Exception) -> bool:
    """Did Stripe answer this create with an error that ends its key?

    A 500 is stored and replayed for 24 h once the endpoint started; any replayed answer
    (`Idempotent-Replayed: true`) means the first request is over; `idempotency_error` (the
    key met other parameters) is answered only when the first request is done. A 409 (the
    same key still running), other 5xx (maybe from something between us and Stripe, maybe
    with the request still running behind it) and no answer at all are not: the key stays.
    """
    if isinstance(exc, stripe_api.IdempotencyError):
        return True
    if not isinstance(exc, stripe_api.StripeError) or exc.http_status is None:
        return False
    headers = exc.headers or {}
    replayed = any(k.lower() == "idempotent-replayed" and v == "true" for k, v in headers.items())
    return exc.http_status == 500 or (replayed and exc.http_status >= 500)


def checkout_key(order: Order) -> str:
    """The idempotency key of the order's current create (the first as it always was)."""
    key = order.idempotency_key("checkout")
    return key if order.checkout_attempt <= 1 else f"{key}-{order.checkout_attempt}"


def order_session(*, order: Order) -> dict[str, Any]:
    """The order's Checkout Session as Stripe has it now, created on first ask.

    Raises stripe_api.StripeError when Stripe fails or refuses: an answered error moves the
    order to its next attempt (see the module's docstring), so the next ask finds the session
    the failed create made, or makes one under a new key.
    """
    if order.stripe_session_id:
        return stripe_api.checkout_session_retrieve(order.stripe_session_id)
    if order.checkout_attempt_failed:
        found = _session_found(order)
        if found is not None:
            return _adopt(order, found)
        _next_attempt(order)
    try:
        session = _create(order)
    except stripe_api.StripeError as exc:
        if create_over(exc):
            _attempt_failed(order)
        raise
    return _adopt(order, session)


def _create(order: Order) -> dict[str, Any]:
    goods = order.kind == Order.Kind.GOODS
    reserved_until = order.reserved_until
    assert reserved_until is not None  # checkout sets it on every order
    return stripe_api.checkout_session_create(
        line_items=[
            (line.stripe_price_id, line.quantity) for line in order.lines.order_by("product_id")
        ],
        order_id=order.pk,
        order_token=order.idempotency_token,
        customer_email=order.email,
        expires_at=int(reserved_until.timestamp()),
        success_url=f"{settings.SITE_URL}/checkout/success/?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{settings.SITE_URL}/checkout/cancel/?session_id={{CHECKOUT_SESSION_ID}}",
        automatic_tax=settings.STRIPE_AUTOMATIC_TAX,
        idempotency_key=checkout_key(order),
        # Goods are shipped: Checkout collects an address and a rate. The pass is not.
        shipping_countries=shipping.shipping_countries() if goods else None,
        shipping_rate_ids=shipping.shipping_rate_ids(currency=order.currency) if goods else None,
        allow_promotion_codes=settings.STRIPE_ALLOW_PROMOTION_CODES,
    )


def is_orders(session: dict[str, Any], order: Order) -> bool:
    """Was this listed session made for this order (not another with the same id)?"""
    metadata = session.get("metadata") or {}
    return (
        session.get("client_reference_id") == str(order.pk)
        and metadata.get("order_id") == str(order.pk)
        and metadata.get("order_token", order.idempotency_token) == order.idempotency_token
    )


def _session_found(order: Order) -> dict[str, Any] | None:
    """The session an earlier attempt made for the order, if Stripe has one: a paid one
    first, else an open one; any other open one is expired, so only one can be paid."""
    since = int((order.created_at - CLOCK_SLACK).timestamp())
    found = [s for s in stripe_api.checkout_sessions_since(since) if is_orders(s, order)]
    if not found:
        return None
    found.sort(key=lambda s: (PREFERRED.get(s.get("status") or "", 3), -(s.get("created") or 0)))
    for extra in found[1:]:
        if extra.get("status") == "open":
            logger.warning("Order %s: a second open session %s, expired", order.pk, extra["id"])
            stripe_api.checkout_session_expire(extra["id"])
    logger.info("Order %s: found its session %s at Stripe", order.pk, found[0]["id"])
    return found[0]


def _adopt(order: Order, session: dict[str, Any]) -> dict[str, Any]:
    """Record `session` as the order's, unless another was recorded meanwhile (then that one
    is the order's, and this one, if open, is expired)."""
    recorded = Order.objects.filter(pk=order.pk, stripe_session_id__isnull=True).update(
        stripe_session_id=session["id"]
    )
    if not recorded:
        stored = Order.objects.filter(pk=order.pk).values_list("stripe_session_id", flat=True)
        existing = stored.first()
        if existing and existing != session["id"]:
            if session.get("status") == "open":
                stripe_api.checkout_session_expire(session["id"])
            order.stripe_session_id = existing
            return stripe_api.checkout_session_retrieve(existing)
    order.stripe_session_id = session["id"]
    return session


def _attempt_failed(order: Order) -> None:
    """Stripe answered the current create with an error that ends its key: the next ask
    looks for the session it may have made, then starts the next attempt."""
    Order.objects.filter(
        pk=order.pk, checkout_attempt=order.checkout_attempt, stripe_session_id__isnull=True
    ).update(checkout_attempt_failed=True)
    logger.info("Order %s: Checkout Session create %s failed", order.pk, order.checkout_attempt)


def _next_attempt(order: Order) -> None:
    """Start the next attempt (a new key), once however many callers saw the last one fail,
    and move a hold still running to Stripe's minimum from now: the new key's `expires_at`,
    kept for every retry of that key (the same key must carry the same parameters)."""
    now = timezone.now()
    with transaction.atomic():
        locked = (
            Order.objects.select_for_update()
            .filter(pk=order.pk, checkout_attempt=order.checkout_attempt)
            .first()
        )
        if locked is not None and locked.checkout_attempt_failed:
            locked.checkout_attempt += 1
            locked.checkout_attempt_failed = False
            until = now + timedelta(minutes=settings.CHECKOUT_RESERVATION_MINUTES) + EXPIRES_SLACK
            if locked.reserved_until is not None and now < locked.reserved_until < until:
                locked.reserved_until = until
                if locked.kind == Order.Kind.GOODS:
                    reservations_extend(holder=reservation_holder(locked.pk), expires_at=until)
            locked.save(
                update_fields=["checkout_attempt", "checkout_attempt_failed", "reserved_until"]
            )
    order.refresh_from_db()
