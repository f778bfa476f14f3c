"""The webhook event log and its dispatch: record each Stripe event once, then apply it.

`HANDLERS`, below, is the one table of what Amazin does with each Stripe event type: a
function of the event's `data.object` and `created`. Types without a handler are recorded as
ignored. A handler that raises leaves the event
`failed` with its error; Stripe retries, and `replay_stripe_events` runs it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from payments import catalog, refunds, services
from payments.models import StripeEvent

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], int], Any]


def _product_upsert(obj: dict[str, Any], created: int) -> None:
    catalog.product_apply(obj=obj, event_created=created)


def _product_deleted(obj: dict[str, Any], created: int) -> None:
    catalog.product_apply(obj={**obj, "deleted": True}, event_created=created)


def _price_upsert(obj: dict[str, Any], created: int) -> None:
    catalog.price_apply(obj=obj, event_created=created)


def _price_deleted(obj: dict[str, Any], created: int) -> None:
    catalog.price_apply(obj={**obj, "deleted": True}, event_created=created)


# Checkout and refunds: the event is only a trigger. Fulfilment asks Stripe for the session
# again, so a forged, stale or reordered event can never mark an order paid by itself.


def _checkout_session_paid(obj: dict[str, Any], created: int) -> None:
    if obj.get("id"):
        services.fulfil_checkout_session(session_id=obj["id"])


def _checkout_session_expired(obj: dict[str, Any], created: int) -> None:
    if obj.get("id"):
        services.checkout_session_expired(session_id=obj["id"])


def _charge_refunded(obj: dict[str, Any], created: int) -> None:
    # Whatever the payload says (`refunded`, `amount_refunded`), Stripe is asked again.
    if obj.get("id"):
        refunds.charge_sync(charge_id=obj["id"])


def _refund_changed(obj: dict[str, Any], created: int) -> None:
    refunds.charge_sync(charge_id=services.stripe_id_of(obj.get("charge")))


HANDLERS: dict[str, Handler] = {
    "product.created": _product_upsert,
    "product.updated": _product_upsert,
    "product.deleted": _product_deleted,
    "price.created": _price_upsert,
    "price.updated": _price_upsert,
    "price.deleted": _price_deleted,
    "checkout.session.completed": _checkout_session_paid,
    "checkout.session.async_payment_succeeded": _checkout_session_paid,
    "checkout.session.expired": _checkout_session_expired,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_changed,
    "refund.updated": _refund_changed,
}


def stripe_event_record(*, event: dict[str, Any]) -> StripeEvent:
    """Store a verified event, once: a redelivery returns the row already there."""
    try:
        with transaction.atomic():
            return StripeEvent.objects.create(
                stripe_id=event["id"],
                type=event["type"],
                payload=event,
                stripe_created=int(event.get("created") or 0),
            )
    except IntegrityError:
        return StripeEvent.objects.get(stripe_id=event["id"])


def stripe_event_process(*, record: StripeEvent) -> StripeEvent:
    """Apply an event unless already done; safe when two deliveries race (the row is locked)."""
    with transaction.atomic():
        record = StripeEvent.objects.select_for_update().get(pk=record.pk)
        if record.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED):
            return record
        handler = HANDLERS.get(record.type)
        record.attempts += 1
        if handler is None:
            record.status = StripeEvent.Status.IGNORED
        else:
            obj = (record.payload.get("data") or {}).get("object") or {}
            try:
                with transaction.atomic():
                    handler(obj, record.stripe_created)
            except Exception as exc:  # the error is stored; the caller answers 500
                logger.exception("Stripe event %s (%s) failed", record.stripe_id, record.type)
                record.status = StripeEvent.Status.FAILED
                record.error = f"{type(exc).__name__}: {exc}"
            else:
                record.status = StripeEvent.Status.PROCESSED
                record.error = ""
        record.processed_at = timezone.now()
        record.save(update_fields=["status", "error", "attempts", "processed_at"])
    return record
