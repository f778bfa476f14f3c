"""Refunds: staff refunding (part of) an order, and Stripe's word on what was refunded.

Staff refunds follow "record the intent, call Stripe outside any transaction, record the
outcome". The intent is a Refund row whose idempotency key is derived from the order and
the refund request (a token the admin form carries), so a double click or a retried form
finds the same row and, at worst, repeats the same Stripe request, which Stripe answers
with the same refund: one refund, whatever happens.

Money state is read from Stripe: `charge.refunded` and `refund.*` events are only
triggers to re-read the charge and its refunds (`charge_sync`). A forged payload saying
"refunded" for a charge Stripe says is not changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from payments import signals, stripe_api
from payments.emails import order_email
from payments.models import Order, OrderEvent, OrderLine, Refund
from store.reservations import stock_return

logger = logging.getLogger(__name__)

# A refund request younger than this is taken to be still in flight: the same request
# arriving again (a double click) waits for it instead of asking Stripe at the same time.
# Older, it was interrupted (a crash between the steps): asking again with the same key
# gets Stripe's answer to the first request, or makes the refund if it never arrived.
IN_FLIGHT = timedelta(seconds=60)

# Refund statuses that count as money given back (Stripe counts pending ones too).
COUNTED = (Refund.Status.SUCCEEDED, Refund.Status.PENDING)


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
    """Quantities already refunded per order line (requested refunds included)."""
    done: dict[int, int] = {}
    for lines in order.refunds.exclude(
        status__in=(Refund.Status.FAILED, Refund.Status.CANCELED)
    ).values_list("lines", flat=True):
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
    always gives the same Refund and the same single refund at Stripe. Raises RefundError.
    """
    lines = [item for item in (lines or []) if item.quantity]
    key = refund_idempotency_key(order_id=order_id, request_token=request_token)

    # 1. The intent, under the order's lock.
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        refund = Refund.objects.filter(idempotency_key=key).first()
        if refund is not None and refund.status != Refund.Status.REQUESTED:
            return refund  # the same request again: already done (or failed)
        if refund is not None and refund.created_at > timezone.now() - IN_FLIGHT:
            return refund  # the same request, still in flight (a double click): leave it be
        if refund is None:
            if not order.is_paid or not order.stripe_payment_intent_id:
                raise RefundError(f"{order} is {order.get_status_display().lower()}.")
            total = (amount or 0) + (_lines_amount(order, lines) if lines else 0)
            if everything:
                total = order.refundable - (
                    order.refunds.filter(status=Refund.Status.REQUESTED).aggregate(s=Sum("amount"))[
                        "s"
                    ]
                    or 0
                )
            if total < 1:
                raise RefundError("Say how much to refund, or which lines.")
            pending = order.refunds.filter(status=Refund.Status.REQUESTED).aggregate(
                s=Sum("amount")
            )["s"]
            if total > order.refundable - (pending or 0):
                raise RefundError(
                    f"At most {order.refundable - (pending or 0)} (minor units) is left to "
                    f"refund on {order}."
                )
            refund = Refund.objects.create(
                order=order,
                amount=total,
                currency=order.currency,
                idempotency_key=key,
                lines={str(item.line_id): item.quantity for item in lines},
                restock=restock and bool(lines),
                reason=reason.strip()[:255],
                created_by=_actor(actor),
            )
            OrderEvent.objects.create(
                order=order,
                kind=OrderEvent.Kind.REFUND_REQUESTED,
                amount=total,
                message=refund.reason,
                actor=_actor(actor),
            )

    # 2. Stripe, outside any transaction; the key makes a repeat return the same refund.
    try:
        answer = stripe_api.refund_create(
            payment_intent=order.stripe_payment_intent_id,
            order_id=order.pk,
            idempotency_key=key,
            amount=refund.amount,
            reason="requested_by_customer",
            metadata={"amazin_refund": str(refund.pk)},
        )
    except stripe_api.IdempotencyError:
        # The same key is in use by the request still in flight: it will record the outcome.
        return refund
    except stripe_api.StripeError as exc:
        with transaction.atomic():
            Refund.objects.filter(pk=refund.pk, status=Refund.Status.REQUESTED).update(
                status=Refund.Status.FAILED, error=str(exc)[:2000]
            )
            OrderEvent.objects.create(
                order=order,
                kind=OrderEvent.Kind.REFUND_FAILED,
                amount=refund.amount,
                message=str(exc)[:2000],
                actor=_actor(actor),
            )
        raise RefundError(f"Stripe refused the refund: {exc}") from exc

    # 3. The outcome.
    return _refund_record(refund_id=refund.pk, answer=answer, actor=actor)


def _status_of(answer: dict[str, Any]) -> str:
    status = answer.get("status") or ""
    if status in ("succeeded", "pending", "failed", "canceled"):
        return status
    return Refund.Status.PENDING  # requires_action: money not back yet, but on its way


def _refund_record(*, refund_id: int, answer: dict[str, Any], actor: Any = None) -> Refund:
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        was = refund.status
        refund.stripe_refund_id = answer.get("id") or refund.stripe_refund_id
        refund.status = _status_of(answer)
        refund.amount = answer.get("amount") or refund.amount
        refund.save(update_fields=["stripe_refund_id", "status", "amount"])
        if was not in COUNTED and refund.status in COUNTED:
            _refunded(order=order, refund=refund, actor=actor)
    return refund


def _refunded(*, order: Order, refund: Refund, actor: Any) -> None:
    """A refund went through: log it, restock if asked, update the order, tell the shopper."""
    OrderEvent.objects.create(
        order=order,
        kind=OrderEvent.Kind.REFUNDED,
        amount=refund.amount,
        message=refund.stripe_refund_id or "",
        actor=_actor(actor) or refund.created_by,
    )
    if refund.restock and not refund.restocked and refund.lines:
        quantities: dict[int, int] = {}
        for line in order.lines.filter(pk__in=[int(k) for k in refund.lines]):
            quantities[line.product_id] = int(refund.lines[str(line.pk)])
        stock_return(quantities=quantities)
        refund.restocked = True
        refund.save(update_fields=["restocked"])
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.STOCK_RESTORED,
            message=", ".join(
                f"{q} x {line.product}"
                for line in order.lines.select_related("product").filter(product_id__in=quantities)
                for q in [quantities[line.product_id]]
            ),
            actor=_actor(actor) or refund.created_by,
        )
    counted = order.refunds.filter(status__in=COUNTED).aggregate(s=Sum("amount"))["s"] or 0
    _order_amount_refunded(order=order, amount_refunded=max(order.amount_refunded, counted))
    # Staff refunds (made here, with a key) tell the shopper; the unfillable-order refund
    # has its own email, and Stripe's dashboard sends its own receipt.
    if refund.idempotency_key:
        order_email(
            order=order,
            template="order_refund_issued",
            subject=f"Your Amazin order #{order.pk}: refund of part of your payment"
            if order.status == Order.Status.PARTIALLY_REFUNDED
            else f"Your Amazin order #{order.pk} was refunded",
            refund=refund,
        )


def _order_amount_refunded(*, order: Order, amount_refunded: int) -> None:
    """Set what is refunded so far, and the status it implies (in the caller's transaction)."""
    order.amount_refunded = amount_refunded
    if amount_refunded >= order.amount_total > 0:
        order.save(update_fields=["amount_refunded"])
        # Marks it refunded and sends `order_refunded` (access is revoked), with the row lock.
        order_refunded(payment_intent_id=order.stripe_payment_intent_id)
        order.refresh_from_db()
        return
    if amount_refunded > 0 and order.status == Order.Status.PAID:
        order.status = Order.Status.PARTIALLY_REFUNDED
    order.save(update_fields=["amount_refunded", "status"])


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


def charge_sync(*, charge_id: str) -> Order | None:
    """Stripe says something about this charge's refunds: ask Stripe what, and record it.

    Every refund Stripe has for the charge gets a Refund row (made here if it was made
    elsewhere, e.g. Stripe's dashboard); the order's refunded amount and status follow
    Stripe's charge: fully refunded marks the order refunded (and revokes what it granted),
    partly refunded marks it `partially_refunded`.
    """
    if not charge_id:
        return None
    charge = stripe_api.charge_retrieve(charge_id)
    payment_intent = stripe_api.stripe_id_of(charge.get("payment_intent"))
    if not payment_intent:
        return None
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .filter(stripe_payment_intent_id=payment_intent)
            .first()
        )
        if order is None:
            return None
        for answer in (charge.get("refunds") or {}).get("data") or []:
            _refund_sync(order=order, answer=answer)
        amount_refunded = int(charge.get("amount_refunded") or 0)
        if charge.get("refunded"):
            amount_refunded = max(amount_refunded, order.amount_total)
        if amount_refunded > order.amount_refunded or (
            charge.get("refunded") and order.status != Order.Status.REFUNDED
        ):
            _order_amount_refunded(order=order, amount_refunded=amount_refunded)
    return order


def _refund_sync(*, order: Order, answer: dict[str, Any]) -> None:
    stripe_id = answer.get("id") or ""
    if not stripe_id:
        return
    refund = Refund.objects.select_for_update().filter(stripe_refund_id=stripe_id).first()
    if refund is None:
        ours = (answer.get("metadata") or {}).get("amazin_refund")
        if ours and str(ours).isdigit():
            refund = (
                Refund.objects.select_for_update()
                .filter(pk=int(ours), order=order, stripe_refund_id=None)
                .first()
            )
    status = _status_of(answer)
    if refund is None:
        refund = Refund.objects.create(
            order=order,
            amount=int(answer.get("amount") or 0) or 1,
            currency=answer.get("currency") or order.currency,
            stripe_refund_id=stripe_id,
            status=status,
            reason=(answer.get("reason") or "refunded at Stripe")[:255],
        )
        if status in COUNTED:
            OrderEvent.objects.create(
                order=order,
                kind=OrderEvent.Kind.REFUNDED,
                amount=refund.amount,
                message=f"{stripe_id} (made at Stripe)",
            )
        return
    was = refund.status
    refund.stripe_refund_id = stripe_id
    refund.status = status
    refund.save(update_fields=["stripe_refund_id", "status"])
    if was not in COUNTED and status in COUNTED:
        _refunded(order=order, refund=refund, actor=None)
