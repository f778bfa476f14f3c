"""The webhook event log and its dispatch: record each Stripe event once, then apply it.

`HANDLERS`, below, is the one table of what Amazin does with each Stripe event type: a
function of the event's `data.object` and `created`. Types without a handler are recorded as
ignored.

The webhook only records the event and queues `stripe_event_handle`, so it answers in
milliseconds whatever Stripe's latency; the worker runs the handler. No transaction is held
while a handler runs: handlers keep their own short transactions and call Stripe outside
them, so a slow Stripe holds no lock (on SQLite, the whole database's). A handler that raises
leaves the event `failed` with its error; the task retries with back-off, Stripe's own
redeliveries queue it again, and `replay_stripe_events` runs it by hand.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone
from django_tasks import TaskResultStatus, task

from payments import catalog, disputes, fulfilment, heartbeat, refund_sync, settle
from payments.models import StripeEvent, Worker
from payments.queue import retry_later

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
        fulfilment.fulfil_checkout_session(session_id=obj["id"])


def _checkout_session_expired(obj: dict[str, Any], created: int) -> None:
    if obj.get("id"):
        settle.checkout_session_expired(session_id=obj["id"])


def _checkout_session_payment_failed(obj: dict[str, Any], created: int) -> None:
    if obj.get("id"):
        settle.checkout_session_payment_failed(session_id=obj["id"])


# Refunds and disputes: whatever the payload says (`refunded`, `amount_refunded`, `status`),
# the object is read from Stripe again. One about a payment no order has yet raises
# refund_sync.NoOrderYet: the event is kept, `waiting`, and applied once the order exists.


def _charge_refunded(obj: dict[str, Any], created: int) -> None:
    refund_sync.charge_sync(charge_id=obj.get("id") or "")


def _refund_changed(obj: dict[str, Any], created: int) -> None:
    refund_sync.refund_reread(refund_id=obj.get("id") or "")


def _dispute_changed(obj: dict[str, Any], created: int) -> None:
    disputes.dispute_sync(dispute_id=obj.get("id") or "")


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
    "checkout.session.async_payment_failed": _checkout_session_payment_failed,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_changed,
    "refund.updated": _refund_changed,
    "refund.failed": _refund_changed,
    "charge.refund.updated": _refund_changed,
    "charge.dispute.created": _dispute_changed,
    "charge.dispute.updated": _dispute_changed,
    "charge.dispute.closed": _dispute_changed,
    "charge.dispute.funds_withdrawn": _dispute_changed,
    "charge.dispute.funds_reinstated": _dispute_changed,
}

# Types Stripe sends for what Amazin does that need nothing more: recorded as ignored on
# purpose. The Checkout Session's events above carry the outcome of a payment (fulfilment
# asks Stripe for the session again), and charge.refunded the outcome of a refund; these
# report the same payments and refunds one object lower, or a Customer that Checkout makes.
IGNORED: frozenset[str] = frozenset(
    {
        "customer.created",
        "charge.succeeded",
        "charge.pending",
        "charge.failed",
        "payment_intent.succeeded",
        "payment_intent.processing",
        "payment_intent.payment_failed",
        # The shop never cancels a PaymentIntent (payments/delayed.py: Stripe refuses for a
        # Checkout Session's); one Stripe cancels reaches it as the session's own events.
        "payment_intent.canceled",
    }
)


# Any claim older than this is taken again, whoever holds it: a claim by anyone but a
# `shop_worker` (the admin's replay, a command) lapses only so, as they have no heartbeat,
# and a live worker's too (a handler that runs this long is taken to be stuck). A worker's
# claim is taken sooner, as soon as its heartbeat stops (WORKER_LEASE_SECONDS,
# payments/heartbeat.py).
STALE_CLAIM = timedelta(minutes=5)
DONE = (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED)


def stripe_event_record(*, event: dict[str, Any]) -> StripeEvent:
    """Store a verified event, once: a redelivery returns the row already there.

    One statement for a new event, committed on its own (`INSERT ... ON CONFLICT DO
    NOTHING RETURNING`: a copy racing in changes nothing and raises nothing); a duplicate
    costs one more, to read the row already there.
    """
    record = StripeEvent(
        stripe_id=event["id"],
        type=event["type"],
        payload=event,
        stripe_created=int(event.get("created") or 0),
    )
    pk = _insert_new(record)
    if pk is None:
        return StripeEvent.objects.get(stripe_id=record.stripe_id)
    record.pk = pk
    return record


def _insert_new(record: StripeEvent) -> int | None:
    """Insert `record` unless its `stripe_id` is there already; its new id, or None."""
    meta = StripeEvent._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    values = [f.get_db_prep_save(f.pre_save(record, True), connection) for f in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field('stripe_id').column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return int(row[0]) if row else None


def stripe_event_receive(*, event: dict[str, Any]) -> StripeEvent:
    """The webhook's part: record the event and queue its handling (again, if it failed).

    Two statements for a new event (its row, its task), each committed before the answer.
    """
    record = stripe_event_record(event=event)
    if record.status not in DONE:  # a claim still fresh makes the queued run a no-op
        result = stripe_event_handle.enqueue(record_id=record.pk)
        if result.status != TaskResultStatus.READY:  # a backend that ran it at once
            record.refresh_from_db()
    return record


@task()
def stripe_event_handle(*, record_id: int, attempt: int = 1) -> None:
    record = _claim(record_id)
    if record is None:  # done, or a live worker has it
        return
    record = _apply(record)
    if record.status == StripeEvent.Status.FAILED:
        retry_later(
            stripe_event_handle,
            attempt=attempt,
            error=RuntimeError(record.error),
            record_id=record_id,
        )


CLAIMABLE = (StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED, StripeEvent.Status.WAITING)


def _claim(pk: int) -> StripeEvent | None:
    """Take the event for this process and read it, in one conditional UPDATE; None if it
    is done or someone alive has it.

    Claimable: received, failed or waiting; or taken by a worker whose heartbeat stopped, or
    by this very worker (an earlier run of its own that a database error cut short: a worker
    runs one event at a time); or taken by anyone longer ago than STALE_CLAIM.
    """
    meta = StripeEvent._meta
    quote = connection.ops.quote_name
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    workers = Worker._meta
    now = timezone.now()
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {column['status']} = %s, {column['claimed_at']} = %s, "
        f"{column['claimed_by']} = %s, {column['attempts']} = {column['attempts']} + 1 "
        f"WHERE {column['id']} = %s AND ({column['status']} IN (%s, %s, %s) OR "
        f"({column['status']} = %s AND ({column['claimed_at']} < %s OR "
        f"({column['claimed_by']} <> '' AND ({column['claimed_by']} = %s OR "
        f"{column['claimed_by']} NOT IN (SELECT {quote(workers.pk.column)} "
        f"FROM {quote(workers.db_table)} "
        f"WHERE {quote(workers.get_field('beat_at').column)} >= %s)))))) "
        f"RETURNING {', '.join(column.values())}"
    )
    me = heartbeat.current()
    params = [
        *[StripeEvent.Status.PROCESSING, now, me, pk, *CLAIMABLE],
        *[StripeEvent.Status.PROCESSING, now - STALE_CLAIM, me, now - heartbeat.lease()],
    ]
    return next(iter(StripeEvent.objects.raw(sql, params)), None)


def stripe_event_process(*, record: StripeEvent) -> StripeEvent:
    """Apply an event unless done or being done; safe when deliveries and workers race.

    The claim is one conditional UPDATE, so of two callers at once one runs the handler and
    the other returns at once. The handler itself runs in no transaction of ours.
    """
    claimed = _claim(record.pk)
    if claimed is None:
        record.refresh_from_db()
        return record
    return _apply(claimed)


def _apply(record: StripeEvent) -> StripeEvent:
    """Run the handler of an event claimed by this process, and say how it went.

    A database error (a restart under the handler) is the database's fault, not the
    event's: the claim is given back, if the database answers, for whoever runs the event's
    task again; if it does not, the worker's heartbeat stops under this name and the claim
    lapses with it. A connection the error broke (a restart, `pg_terminate_backend`) is
    closed first, so that the claim goes back on a new one rather than failing on the dead one.
    """
    try:
        return _handled(record)
    except (OperationalError, InterfaceError):
        with contextlib.suppress(DatabaseError):
            if not connection.in_atomic_block:  # a caller's transaction is the caller's
                connection.close_if_unusable_or_obsolete()
            StripeEvent.objects.filter(
                pk=record.pk,
                status=StripeEvent.Status.PROCESSING,
                claimed_at=record.claimed_at,
                claimed_by=record.claimed_by,
            ).update(status=StripeEvent.Status.RECEIVED)
        raise


def _handled(record: StripeEvent) -> StripeEvent:
    handler = HANDLERS.get(record.type)
    status, error = StripeEvent.Status.PROCESSED, ""
    if handler is None:
        status = StripeEvent.Status.IGNORED
    else:
        obj = (record.payload.get("data") or {}).get("object") or {}
        try:
            handler(obj, record.stripe_created)
        except refund_sync.NoOrderYet as exc:  # kept for the order (payments.money_look)
            status, error = StripeEvent.Status.WAITING, str(exc)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # stored for the retry, the admin and replay_stripe_events
            logger.exception("Stripe event %s (%s) failed", record.stripe_id, record.type)
            status, error = StripeEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"
    now = timezone.now()
    finished = StripeEvent.objects.filter(  # still our claim: not taken over meanwhile
        pk=record.pk,
        status=StripeEvent.Status.PROCESSING,
        claimed_at=record.claimed_at,
        claimed_by=record.claimed_by,
    ).update(status=status, error=error, processed_at=now)
    if finished:
        record.status, record.error, record.processed_at = status, error, now
    else:  # taken from us meanwhile (our claim went stale): the row says what happened
        record.refresh_from_db()
    return record
