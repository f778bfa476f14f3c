"""Fulfilment and what ends a pending order: where money meets stock.

Starting a checkout is `payments.checkout`. A pending goods order holds its stock with
store reservations under the key `reservation_holder(order.pk)`, until `reserved_until`.
Store's services do the locking (products in primary-key order, so two checkouts, or a
checkout and a fulfilment, never deadlock) and take stock with a conditional UPDATE, so it
never goes below zero. An order leaves "pending" and gives its reservation back through one
path, `_orders_release`: checkout failure, Stripe's expiry event, and cancel and the sweep
once Stripe says the session expired (`order_settle_with_stripe`), all use it.

A delayed payment (a bank transfer): Checkout completes with `payment_status` "unpaid" and
the money comes days later, or never. The order then becomes "processing" at once: its lines
leave the cart as on a paid order (the browser can shop and check out again; one open
Checkout per cart counts pending orders only), and its stock stays held until Stripe says
the payment succeeded (fulfilled as any paid order) or failed (released, the order failed,
the shopper emailed). Stripe's events say which; the sweep asks Stripe itself only as a
backstop for lost events, less and less often (`delayed_payment_next_check`).

A transfer the shopper never sends stays unpaid at Stripe for ever, so the hold is capped:
once the order is `DELAYED_PAYMENT_MAX_DAYS` old (counted from `created_at`, when Checkout
started: at most the session's lifetime before it completed), the sweep's next look gives up
on it (`delayed_payment_give_up`). It cancels the PaymentIntent at Stripe, outside any
transaction, and then settles as Stripe now says, never on its own guess: canceled, the
order fails, its hold is released and the shopper is told the transfer did not arrive in
time; refused because the money arrived just before, the order is fulfilled; no answer
(Stripe down), nothing changes and the next look tries again. Money that arrived is never
dropped: a PaymentIntent Stripe has canceled can no longer be paid, and one that succeeded
cannot be canceled, so Stripe's answer decides, and a fulfilment that won the order's row
meanwhile keeps it (`_orders_release` only moves a processing order).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from cart.models import Cart
from cart.services import cart_remove_products
from payments import shipping, signals, stripe_api
from payments.emails import order_email
from payments.models import Order, OrderEvent, reservation_holder
from payments.queue import retry_later
from store.reservations import (
    reservations_extend,
    reservations_release,
    stock_take,
)

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

    None means "not completed (yet)" or "not one of ours". A session completed with a delayed
    payment is not paid yet: its order is returned "processing" (or "failed", once Stripe
    says the payment failed; see `_delayed_payment`). Safe to call any number of times at
    once (webhook, success page, retries): the order row is locked and a paid or refunded
    order is returned as it is. Raises stripe_api.StripeError if Stripe cannot be asked (before
    anything is written). An order that cannot be filled is marked and its refund queued.
    """
    return _session_fulfil(session=stripe_api.checkout_session_retrieve(session_id))


def _session_fulfil(*, session: dict[str, Any]) -> Order | None:
    """`fulfil_checkout_session` for a session just retrieved from Stripe (never a payload)."""
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        if session.get("status") == "complete":
            return _delayed_payment(session=session)
        return None
    order = _order_for_session(session)
    if order is None:
        return None
    # Amounts, address and code as Stripe reports them (may ask Stripe: no transaction yet).
    reported = shipping.session_details(session)

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status in FULFILLED:
            return order
        # Its lines left the cart when Checkout completed; what is there now is new shopping.
        in_cart = order.status != Order.Status.PROCESSING
        if order.cart_id is not None and in_cart:
            _cart_lock(order.cart_id)
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
                return order

        order.status = Order.Status.PAID
        order.paid_at = timezone.now()
        order.problem = ""
        order.save()
        OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.PAID, amount=order.amount_total)
        if order.cart_id is not None and in_cart:
            cart_remove_products(cart_id=order.cart_id, product_ids=ids)
        # In the transaction: what receivers grant commits with "paid" (see payments.signals).
        signals.order_paid.send(sender=Order, order=order)
        order_email(order=order, template="order_confirmation")
    return order


def _cart_lock(cart_id: int) -> None:
    """Lock the cart whose lines an order is about to take out (call in a transaction).

    Checkout reads a cart's lines under this lock (payments.checkout), so a checkout that
    starts as an order leaves the cart sees the lines already gone, never ones just bought.
    Lock order: the order's row, then its cart, then products, as checkout (cart, products).
    """
    Cart.objects.select_for_update().filter(pk=cart_id).first()


def delayed_payment_next_check(*, order: Order, now: datetime) -> datetime:
    """When the sweep next asks Stripe about an order whose payment is on its way.

    Its events (or reconcile, reading back lost ones) normally bring the outcome, so the
    sweep's look is only a backstop: a quarter of the order's age from now, at least
    DELAYED_CHECK_MIN and at most DELAYED_CHECK_MAX. The gaps grow by a quarter each look:
    about 30 looks over a 5-day transfer, instead of one per sweep (every 30 s) forever.
    """
    gap = (now - order.created_at) / 4
    return now + min(max(gap, DELAYED_CHECK_MIN), DELAYED_CHECK_MAX)


def _delayed_payment(*, session: dict[str, Any]) -> Order | None:
    """A completed session whose payment is not in yet (a bank transfer): returns its order.

    Stripe says it failed (its PaymentIntent wants another method, or was canceled): the
    order fails, its hold is released and the shopper told. Otherwise it is on its way: a
    pending order becomes "processing" and leaves its cart (its products are removed from the
    cart, as when paid), and its hold is renewed DELAYED_HOLD ahead, until Stripe says.
    """
    order = _order_for_session(session)
    if order is None:
        return None
    intent = session.get("payment_intent")
    if isinstance(intent, dict) and intent.get("status") in DELAYED_FAILED:
        _delayed_payment_failed(order_id=order.pk, session=session)
        order.refresh_from_db()
        return order
    now = timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status not in (Order.Status.PENDING, Order.Status.PROCESSING):
            return order
        order.stripe_check_at = delayed_payment_next_check(order=order, now=now)
        if order.cart_id is not None and order.status == Order.Status.PENDING:
            _cart_lock(order.cart_id)
        if order.kind == Order.Kind.GOODS:
            reservations_extend(holder=reservation_holder(order.pk), expires_at=now + DELAYED_HOLD)
        if order.status == Order.Status.PENDING:
            details = session.get("customer_details") or {}
            order.email = details.get("email") or session.get("customer_email") or order.email
            order.stripe_payment_intent_id = stripe_id_of(intent)
            order.status = Order.Status.PROCESSING
            if order.cart_id is not None:
                cart_remove_products(
                    cart_id=order.cart_id,
                    product_ids=list(order.lines.values_list("product_id", flat=True)),
                )
            logger.info("Order %s: checkout complete, payment on its way", order.pk)
        order.save()
    return order


def _delayed_payment_failed(
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
        failed = _orders_release(
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


def _unpaid_intent_status(session: dict[str, Any]) -> str | None:
    """The status of a complete, unpaid session's PaymentIntent; None for any other session."""
    intent = session.get("payment_intent")
    if session.get("status") != "complete" or session.get("payment_status") != "unpaid":
        return None
    return (intent.get("status") if isinstance(intent, dict) else None) or ""


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
        status = _unpaid_intent_status(session)
        if status is not None and status not in DELAYED_FAILED:
            intent_id = stripe_id_of(session.get("payment_intent"))
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
    if _unpaid_intent_status(session) == "canceled":
        _delayed_payment_failed(
            order_id=order.pk,
            session=session,
            problem=TIMED_OUT.format(days=settings.DELAYED_PAYMENT_MAX_DAYS),
            template="order_payment_late",
        )
        order.refresh_from_db()
        return order
    # Paid (fulfilled), bounced (failed), or still on its way after a refusal (kept).
    try:
        return _session_fulfil(session=session) or order
    except stripe_api.StripeError as exc:
        logger.info("Order %s: fulfilment must wait for Stripe: %s", order.pk, exc)
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
    order = Order.objects.filter(pk=order_id, status=Order.Status.REFUND_PENDING).first()
    if order is None:
        return
    if not order.stripe_payment_intent_id:  # nothing was charged (a 100% discount)
        Order.objects.filter(pk=order.pk, status=Order.Status.REFUND_PENDING).update(
            status=Order.Status.REFUNDED,
            problem=order.problem.replace("refund under way", "nothing to refund"),
        )
        return
    try:
        # One idempotency key per order (from its random token, not its id): a retry after a
        # lost answer gets the same refund, and no other order can ever meet it.
        refund = stripe_api.refund_create(
            payment_intent=order.stripe_payment_intent_id,
            order_id=order.pk,
            idempotency_key=order.idempotency_key("refund"),
        )
    except stripe_api.StripeError as exc:
        retry_later(order_refund_unfillable, attempt=attempt, error=exc, order_id=order_id)
        return
    with transaction.atomic():
        refunded = Order.objects.filter(pk=order.pk, status=Order.Status.REFUND_PENDING).update(
            status=Order.Status.REFUNDED,
            stripe_refund_id=refund.get("id") or "",
            problem=order.problem.replace("refund under way", "refunded"),
        )
        if refunded:
            order_email(order=order, template="order_refunded")
    logger.warning("Order %s refunded: %s", order.pk, order.problem)


def _orders_release(
    order_ids: list[int],
    *,
    status: str = Order.Status.EXPIRED,
    problem: str = "",
    releasable: tuple[str, ...] = (Order.Status.PENDING,),
) -> int:
    """Pending orders leave "pending" and give back their reservations; returns how many did.

    The one release path (checkout failure, cancel, expiry event, sweep, and a delayed
    payment that failed, which also releases a `processing` order). Only orders still in a
    `releasable` status change: a fulfilment that won an order's row meanwhile keeps it (the
    row lock makes the status check and the change one step).
    """
    with transaction.atomic():
        pending = list(
            Order.objects.select_for_update()
            .filter(pk__in=order_ids, status__in=releasable)
            .values_list("pk", flat=True)
        )
        if not pending:
            return 0
        changes = {"status": status} | ({"problem": problem} if problem else {})
        Order.objects.filter(pk__in=pending).update(**changes)
        reservations_release(holders=[reservation_holder(pk) for pk in pending])
    return len(pending)


def order_fail(*, order_id: int, problem: str) -> bool:
    """Checkout could not open a session for a pending order: fail it, free its stock."""
    return bool(_orders_release([order_id], status=Order.Status.FAILED, problem=problem[:2000]))


def order_release(*, order_id: int) -> bool:
    """A pending order gives up its reservation (expired or cancelled). True if it changed."""
    return bool(_orders_release([order_id]))


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


def order_session(*, order: Order) -> dict[str, Any]:
    """The order's Checkout Session as Stripe has it now, created on first ask.

    One idempotency key per order and the same parameters each time: however many requests
    ask at once, Stripe creates one session, and a request whose answer was lost (or that
    died) is answered with that same session when the order's session is asked for again.
    The key comes from the order's random `idempotency_token`, stored with the order, so every
    ask for this order sends the same key and no other order (one given the same id by a
    reset database) can meet it.
    """
    if order.stripe_session_id:
        return stripe_api.checkout_session_retrieve(order.stripe_session_id)
    goods = order.kind == Order.Kind.GOODS
    reserved_until = order.reserved_until
    assert reserved_until is not None  # checkout sets it on every order
    session = stripe_api.checkout_session_create(
        line_items=[
            (line.stripe_price_id, line.quantity) for line in order.lines.order_by("product_id")
        ],
        order_id=order.pk,
        customer_email=order.email,
        expires_at=int(reserved_until.timestamp()),
        success_url=f"{settings.SITE_URL}/checkout/success/?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{settings.SITE_URL}/checkout/cancel/?session_id={{CHECKOUT_SESSION_ID}}",
        automatic_tax=settings.STRIPE_AUTOMATIC_TAX,
        idempotency_key=order.idempotency_key("checkout"),
        # Goods are shipped: Checkout collects an address and a rate. The pass is not.
        shipping_countries=shipping.shipping_countries() if goods else None,
        shipping_rate_ids=shipping.shipping_rate_ids(currency=order.currency) if goods else None,
        allow_promotion_codes=settings.STRIPE_ALLOW_PROMOTION_CODES,
    )
    Order.objects.filter(pk=order.pk, stripe_session_id__isnull=True).update(
        stripe_session_id=session["id"]
    )
    order.stripe_session_id = session["id"]
    return session


def refused_for_good(exc: Exception) -> bool:
    """Stripe answered and refused (nothing was made), as opposed to no answer or "busy"."""
    return isinstance(exc, stripe_api.InvalidRequestError) and not isinstance(
        exc, stripe_api.IdempotencyError
    )


def order_settle_with_stripe(*, order: Order) -> Order:
    """A pending order whose shopper left (cancel) or whose time ran out (sweep), or one
    whose delayed payment the sweep looks at: do what Stripe says its session is, never more.
    A complete, paid session is fulfilled, a complete one still unpaid awaits its payment
    (or fails with it: `_delayed_payment`); an open one is expired at Stripe first; the stock
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
            return _session_fulfil(session=session) or order
        except stripe_api.StripeError as exc:
            logger.info("Order %s: fulfilment must wait for Stripe: %s", order.pk, exc)
            return order
    if session.get("status") == "expired":
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
