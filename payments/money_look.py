"""The periodic look at money not settled yet, until it is: nothing waits on one task.

Every MONEY_LOOK_EVERY_SECONDS the worker (payments.tasks) looks again at:
- unfilled orders (`refund_pending`) not refunded yet (payments.unfilled): their task may
  have been killed or have run out of retries while Stripe was down;
- refunds `requested` with no answer from Stripe (an answer lost, a 5xx, a process killed
  mid-request: its claim goes stale after refunds.IN_FLIGHT): sent again, after asking Stripe
  what exists (payments.refunds.refund_send), so never made twice;
- refunds `pending` or needing action whose next check is due: read from Stripe again (their
  events normally come first);
- payment events (Checkout Sessions, charges, refunds, disputes) that failed for good or
  were left `processing` by a dead worker, with back-off: run again (a paid session whose
  order was never filled is filled);
- events kept `waiting` for an order (a refund or dispute made before the shop saw the
  payment) once that order exists: applied.
Every step is idempotent and claims what it does (conditional updates), so two looks at
once, or a look beside the task it backs up, do nothing twice. Staff start the same look for
one order from the admin (`order_look_again`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments import fulfilment, stripe_api, webhooks
from payments.models import Order, Refund, StripeEvent
from payments.refund_sync import (
    NoOrderYet,
    payment_read,
    payment_sync,
    refund_next_check,
    refund_reread,
)
from payments.refunds import IN_FLIGHT, refund_send
from payments.unfilled import order_refund_unfilled

logger = logging.getLogger(__name__)

# What one look takes on at most of each kind (the next look takes the rest).
BATCH = 100
# Events about money: run again until they are handled (other types are left to replay).
MONEY_EVENTS = ("checkout.session.", "charge.", "refund.")
# A failed event is run again this long after its last try, doubling with each try.
EVENT_BACKOFF = timedelta(minutes=1)
EVENT_BACKOFF_MAX = timedelta(hours=1)


@dataclass
class Looked:
    unfilled: int = 0  # unfilled orders asked about
    refunds: int = 0  # refunds sent again, found, or read again
    events: int = 0  # events run again
    settled: int = 0  # of all these, how many are settled now


def money_look(*, now: datetime | None = None) -> Looked:
    """One look at everything above; returns what it looked at. Stripe's trouble with one
    item is logged and leaves it for the next look, never stops the others."""
    now = now or timezone.now()
    looked = Looked()
    for order_id in Order.objects.filter(status=Order.Status.REFUND_PENDING).values_list(
        "pk", flat=True
    )[:BATCH]:
        looked.unfilled += 1
        looked.settled += _try(order_refund_unfilled, order_id=order_id)
    requested = Refund.objects.filter(status=Refund.Status.REQUESTED).filter(
        Q(sent_at__isnull=True) | Q(sent_at__lt=now - IN_FLIGHT),
        Q(check_at__isnull=True) | Q(check_at__lte=now),
    )
    for refund_id in requested.values_list("pk", flat=True)[:BATCH]:
        looked.refunds += 1
        looked.settled += _try(_refund_send, refund_id=refund_id, now=now)
    for refund in Refund.objects.filter(
        status__in=(Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION), check_at__lte=now
    ).exclude(stripe_refund_id=None)[:BATCH]:
        # Moved on before Stripe is asked: two looks, or an outage, never ask more often.
        if Refund.objects.filter(pk=refund.pk, check_at=refund.check_at).update(
            check_at=refund_next_check(refund=refund, now=now)
        ):
            looked.refunds += 1
            looked.settled += _try(_refund_read, stripe_id=refund.stripe_refund_id or "")
    for record in _events_due(now):
        looked.events += 1
        done = webhooks.stripe_event_process(record=record)
        looked.settled += done.status in webhooks.DONE
    return looked


def _try(step: Callable[..., object], **kwargs: object) -> bool:
    try:
        return bool(step(**kwargs))
    except stripe_api.StripeError as exc:
        logger.warning("Money look: %s%s must wait for Stripe: %s", step, kwargs, exc)
    except NoOrderYet:
        pass
    return False


def _refund_send(*, refund_id: int, now: datetime) -> bool:
    return refund_send(refund_id=refund_id, now=now).status != Refund.Status.REQUESTED


def _refund_read(*, stripe_id: str) -> bool:
    refund_reread(refund_id=stripe_id)
    return True


def _events_due(now: datetime) -> list[StripeEvent]:
    """Failed or abandoned payment events whose back-off is over, and waiting ones whose
    order now exists, oldest first. Chosen in the database: however many wait for nothing
    (refunds of payments no order has, such as another app's on the same Stripe account),
    a newer one that is due is found."""
    money = Q()
    for prefix in MONEY_EVENTS:
        money |= Q(type__startswith=prefix)
    stuck = (
        StripeEvent.objects.filter(money)
        .filter(
            Q(status=StripeEvent.Status.FAILED)
            | Q(status=StripeEvent.Status.PROCESSING, claimed_at__lt=now - webhooks.STALE_CLAIM)
        )
        .alias(since=Coalesce("claimed_at", "received_at"))
        .filter(_backoff_over(now))
    )
    # The payment an event is about, as `_payment_of` reads it (the id, or the expanded object's).
    orders = Order.objects.exclude(stripe_payment_intent_id="")
    waiting = (
        StripeEvent.objects.filter(status=StripeEvent.Status.WAITING)
        .alias(intent=KT("payload__data__object__payment_intent"))
        .alias(expanded=KT("payload__data__object__payment_intent__id"))
        .filter(
            Exists(orders.filter(stripe_payment_intent_id=OuterRef("intent")))
            | Exists(orders.filter(stripe_payment_intent_id=OuterRef("expanded")))
        )
    )
    return [
        *stuck.order_by("stripe_created", "pk")[:BATCH],
        *waiting.order_by("stripe_created", "pk")[:BATCH],
    ]


def _backoff(attempts: int) -> timedelta:
    return min(EVENT_BACKOFF * (1 << max(attempts - 1, 0)), EVENT_BACKOFF_MAX)


def _backoff_over(now: datetime) -> Q:
    """`_backoff(attempts)` has passed since the last try (`since`), as a filter."""
    over, attempts = Q(), 0
    while _backoff(attempts) < EVENT_BACKOFF_MAX:
        over |= Q(attempts=attempts, since__lte=now - _backoff(attempts))
        attempts += 1
    return over | Q(attempts__gte=attempts, since__lte=now - EVENT_BACKOFF_MAX)


def _payment_of(record: StripeEvent) -> str:
    """The payment an event's object is about (a trigger only: Stripe is asked again)."""
    obj = (record.payload.get("data") or {}).get("object") or {}
    return stripe_api.stripe_id_of(obj.get("payment_intent")) if isinstance(obj, dict) else ""


def order_look_again(*, order_id: int) -> Order:
    """Staff's "Look again at Stripe" for one order: everything the periodic look would do
    for it, now. Raises stripe_api.StripeError when Stripe cannot be asked."""
    order = Order.objects.get(pk=order_id)
    if order.status in (Order.Status.PENDING, Order.Status.PROCESSING) and order.stripe_session_id:
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    order_refund_unfilled(order_id=order.pk)
    for refund_id in order.refunds.filter(status=Refund.Status.REQUESTED).values_list(
        "pk", flat=True
    ):
        refund_send(refund_id=refund_id)
    order.refresh_from_db()
    if order.stripe_payment_intent_id:
        payment_sync(at_stripe=payment_read(order.stripe_payment_intent_id))
        for record in StripeEvent.objects.filter(status=StripeEvent.Status.WAITING):
            if _payment_of(record) == order.stripe_payment_intent_id:
                webhooks.stripe_event_process(record=record)
    order.refresh_from_db()
    return order
