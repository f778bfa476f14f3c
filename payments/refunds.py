"""Refunds the shop asks Stripe for: staff refunding (part of) an order, and sending any
requested refund to Stripe so that no retry can double it and none is stuck.

Staff refunds follow "record the intent, call Stripe outside any transaction, record the
outcome". The intent is a Refund row (`requested`, counted against what is left to refund),
found again by the key of the request (a token the admin form carries), so a double click or
a resubmitted form is the same refund.

Sending (`refund_send`, also used for the unfilled order's refund and by the periodic look,
payments.money_look) is safe to repeat, after any failure:
- one request at a time per refund: a claim (`sent_at`), taken over only after IN_FLIGHT (a
  process that died mid-request);
- Stripe keeps the first answer to an idempotency key, errors included, and replays it for
  24 hours: after an error answer the key is spent, and the next request uses a new one
  (`Refund.stripe_key`, one per `attempt`); after no answer (a timeout, a cut connection) the
  same key is sent again, which Stripe answers with the first request's outcome;
- any request after the first asks Stripe first what exists (the payment's refunds, ours
  found by `metadata.amazin_refund`), so a refund made by a request whose answer was lost is
  found, never made twice, even after the key's 24 hours;
- a refund is `failed` only when Stripe answered and refused it; no answer, a 5xx, or "the
  same key is in use" (409, raised by the SDK as a plain APIError) leave it `requested`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from payments import stripe_api
from payments.models import Order, OrderEvent, OrderLine, Refund
from payments.refund_sync import (
    CHECK_MIN,
    PaymentAtStripe,
    order_money_update,
    payment_sync,
    refund_apply,
    refund_status_set,
)

logger = logging.getLogger(__name__)

# A request to Stripe can take this long at most: the SDK's three tries of up to 80 s each,
# and its back-off. A claim older than this belongs to a process that died.
IN_FLIGHT = timedelta(minutes=5)
# How long a form submitted again (a double click) waits for its first submit's answer from
# Stripe, so that staff read the refund's outcome rather than "no answer yet".
ANSWER_WAIT_SECONDS = 10.0


class RefundError(Exception):
    """The refund was not made; the message is for staff."""


@dataclass(frozen=True)
class LineRefund:
    line_id: int
    quantity: int


def refund_idempotency_key(*, order_id: int, request_token: str) -> str:
    """The key of one staff refund request. Safe against a reset database although it names
    the order by id: `request_token` is random (uuid4, made when the form is shown), so an
    order that gets an old id again never meets an old key. Not rebuilt from the order's
    `idempotency_token`: a request made before that change and retried after must find its
    Refund row (looked up by this key) and send Stripe the same key."""
    return f"amazin-refund-order-{order_id}-request-{request_token}"


def _actor(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def lines_refunded(order: Order) -> dict[int, int]:
    """Quantities already given back per order line (refunds on their way included)."""
    done: dict[int, int] = {}
    for lines in order.refunds.exclude(status__in=Refund.NOT_MADE).values_list("lines", flat=True):
        for line_id, quantity in (lines or {}).items():
            done[int(line_id)] = done.get(int(line_id), 0) + int(quantity)
    return done


def _lines_amount(order: Order, lines: list[LineRefund]) -> int:
    """What the lines cost the shopper: their price less their share of the discount."""
    by_id = {line.pk: line for line in order.lines.all()}
    already = lines_refunded(order)
    total = 0
    for item in lines:
        line: OrderLine | None = by_id.get(item.line_id)
        if line is None:
            raise RefundError(f"Line {item.line_id} is not part of {order}.")
        if item.quantity < 1 or item.quantity + already.get(line.pk, 0) > line.quantity:
            raise RefundError(
                f"{line.product}: {line.quantity} ordered, "
                f"{already.get(line.pk, 0)} already refunded."
            )
        total += line.unit_amount * item.quantity
    if order.amount_discount and order.amount_subtotal:
        total -= total * order.amount_discount // order.amount_subtotal
    return total


def order_refund(
    *,
    order_id: int,
    request_token: str,
    amount: int | None = None,
    lines: list[LineRefund] | None = None,
    restock: bool = False,
    reason: str = "",
    actor: Any = None,
    everything: bool = False,
) -> Refund:
    """Refund `amount`, or the `lines`' worth (plus `amount` if both), of a paid order; or,
    with `everything`, all that is left to refund (the `lines` then only say what came back).

    `request_token` identifies the staff request (one per rendered form): the same token
    always gives the same Refund and at most one refund at Stripe, whatever happened to the
    first submit; it is looked up before anything is worked out, so a form submitted again
    after its refund was made gets that refund back. Lines that cost nothing (bought at
    100 % off) can be given back (restocked; the order refunded if it cost nothing at all,
    which takes back a members' pass) with no money refund. Returns the Refund with Stripe's
    word so far (`requested` when Stripe gave no answer); raises RefundError for a request
    that cannot be made.
    """
    lines = [item for item in (lines or []) if item.quantity]
    key = refund_idempotency_key(order_id=order_id, request_token=request_token)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        refund = Refund.objects.filter(idempotency_key=key).first()
        new = refund is None
        if refund is None:
            refund = _refund_new(
                order=order,
                key=key,
                amount=amount or 0,
                lines=lines,
                restock=restock,
                reason=reason,
                actor=_actor(actor),
                everything=everything,
            )
    if refund.status != Refund.Status.REQUESTED:
        return refund  # done (or refused, or given back with no money)
    if new:  # made with its claim (`sent_at`) held: this request is the first to send it
        return _refund_request(refund=refund, sent_before=False, actor=actor)
    refund = refund_send(refund_id=refund.pk, actor=actor)
    return _answer_awaited(refund)  # in flight elsewhere: its answer, if it comes soon


def _answer_awaited(refund: Refund) -> Refund:
    """`refund` once Stripe's answer to the request in flight for it is recorded, or as it is
    after ANSWER_WAIT_SECONDS (still `requested`: the periodic look takes it from there)."""
    deadline = time.monotonic() + ANSWER_WAIT_SECONDS
    while refund.status == Refund.Status.REQUESTED and refund.sent_at is not None:
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
        refund = Refund.objects.select_related("order").get(pk=refund.pk)
    return refund


def _refund_new(
    *,
    order: Order,
    key: str,
    amount: int,
    lines: list[LineRefund],
    restock: bool,
    reason: str,
    actor: Any,
    everything: bool,
) -> Refund:
    """The Refund row of a new staff request, with the order's row locked."""
    if not order.is_paid:
        raise RefundError(f"{order} is {order.get_status_display().lower()}.")
    total = amount + (_lines_amount(order, lines) if lines else 0)
    if everything:
        total = order.refundable
        if not total and not order.amount_total and not lines:  # it cost nothing: all of it
            already = lines_refunded(order)
            lines = [
                LineRefund(line_id=line.pk, quantity=line.quantity - already.get(line.pk, 0))
                for line in order.lines.all()
                if line.quantity > already.get(line.pk, 0)
            ]
    free = total == 0 and bool(lines)  # given back, nothing to pay back
    if total < 1 and not free:
        raise RefundError("Say how much to refund, or which lines.")
    if total > order.refundable:
        raise RefundError(f"At most {order.refundable} (minor units) is left to refund on {order}.")
    if total and not order.stripe_payment_intent_id:
        raise RefundError(f"{order} has no payment at Stripe to refund.")
    refund = Refund.objects.create(
        order=order,
        amount=total,
        currency=order.currency,
        source=Refund.Source.STAFF,
        idempotency_key=key,
        lines={str(item.line_id): item.quantity for item in lines},
        restock=restock and bool(lines) and order.kind == Order.Kind.GOODS,
        reason=reason.strip()[:255],
        created_by=actor,
        sent_at=None if free else timezone.now(),
        requests=0 if free else 1,
    )
    OrderEvent.objects.create(
        order=order,
        kind=OrderEvent.Kind.REFUND_REQUESTED,
        amount=total,
        message=refund.reason or ("Given back; nothing to pay back (100 % off)" if free else ""),
        actor=actor,
    )
    if free:
        refund_status_set(order=order, refund=refund, status=Refund.Status.SUCCEEDED, actor=actor)
    order_money_update(order=order)
    return refund


def refund_send(*, refund_id: int, actor: Any = None, now: datetime | None = None) -> Refund:
    """Send a requested refund to Stripe, or find it there; returns it with Stripe's word.

    Call outside any transaction. Nothing happens if it is not `requested` any more, or if
    another request for it is out (claimed less than IN_FLIGHT before `now`): safe to call
    from the task, the periodic look, the admin and a resubmitted form at once.
    """
    now = now or timezone.now()
    claimed = (
        Refund.objects.filter(pk=refund_id, status=Refund.Status.REQUESTED)
        .filter(Q(sent_at__isnull=True) | Q(sent_at__lt=now - IN_FLIGHT))
        .update(sent_at=now, requests=F("requests") + 1)
    )
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if not claimed:
        return refund
    return _refund_request(refund=refund, sent_before=refund.requests > 1, actor=actor)


def _refund_request(*, refund: Refund, sent_before: bool, actor: Any) -> Refund:
    """The claimed refund's request to Stripe (after looking for it there, if it was sent
    before), and the outcome recorded."""
    order = refund.order
    payment_intent = order.stripe_payment_intent_id
    try:
        if sent_before:
            at_stripe = stripe_api.refunds_of_payment(payment_intent)
            if any(_ours(refund, answer) for answer in at_stripe):
                payment_sync(at_stripe=PaymentAtStripe(payment_intent, refunds=at_stripe))
                return Refund.objects.select_related("order").get(pk=refund.pk)
        answer = stripe_api.refund_create(
            payment_intent=payment_intent,
            order_id=order.pk,
            idempotency_key=refund.stripe_key,
            amount=refund.amount,
            reason="requested_by_customer" if refund.source == Refund.Source.STAFF else "",
            metadata={"amazin_refund": str(refund.pk)},
        )
    except stripe_api.StripeError as exc:
        return _refund_unanswered(refund=refund, error=exc, actor=actor)
    with transaction.atomic():  # lock order: the order, then its refund (refund_sync)
        locked = Order.objects.select_for_update().get(pk=order.pk)
        row = Refund.objects.select_for_update().get(pk=refund.pk)
        refund_apply(order=locked, answer=answer, refund=row, actor=actor)
        order_money_update(order=locked)
        if row.source == Refund.Source.UNFILLED:
            Order.objects.filter(pk=order.pk).update(stripe_refund_id=row.stripe_refund_id or "")
    return Refund.objects.select_related("order").get(pk=refund.pk)


def _ours(refund: Refund, answer: dict[str, Any]) -> bool:
    return str((answer.get("metadata") or {}).get("amazin_refund") or "") == str(refund.pk)


def refused(exc: Exception) -> bool:
    """Stripe answered and refused (nothing was made)."""
    return isinstance(exc, stripe_api.InvalidRequestError | stripe_api.CardError)


def _refund_unanswered(*, refund: Refund, error: Exception, actor: Any) -> Refund:
    status = getattr(error, "http_status", None)
    if refused(error):
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=refund.order_id)
            row = Refund.objects.select_for_update().get(pk=refund.pk)
            refund_status_set(
                order=order, refund=row, status=Refund.Status.FAILED, error=str(error), actor=actor
            )
            order_money_update(order=order)
        # Refused because of refunds made elsewhere (Stripe's dashboard)? Read them now, so
        # the order, and the form shown again, say what is really left.
        try:
            payment_id = refund.order.stripe_payment_intent_id
            payment_sync(
                at_stripe=PaymentAtStripe(
                    payment_id, refunds=stripe_api.refunds_of_payment(payment_id)
                )
            )
        except stripe_api.StripeError as exc:
            logger.warning("Refund %s: could not re-read its payment: %s", refund.pk, exc)
        return Refund.objects.select_related("order").get(pk=refund.pk)
    # No answer (the same key is safe to send again), or an answer Stripe keeps for the key
    # (a 5xx, or "this key was used with other parameters"): the next request uses a new key,
    # after asking Stripe what exists. A 409 (the key in use by a request still running)
    # spends nothing.
    spent = isinstance(error, stripe_api.IdempotencyError) or (status or 0) >= 500
    Refund.objects.filter(pk=refund.pk, status=Refund.Status.REQUESTED).update(
        sent_at=None,
        attempt=F("attempt") + (1 if spent else 0),
        error=f"No answer from Stripe yet: {error}"[:2000],
        check_at=timezone.now() + CHECK_MIN,
    )
    logger.warning("Refund %s: no answer from Stripe (%s): %s", refund.pk, status, error)
    return Refund.objects.select_related("order").get(pk=refund.pk)
