"""Catch up on what Stripe sent and never arrived: read the Events API from a checkpoint.

A webhook can be lost for good: the endpoint was down longer than Stripe retries, a proxy
ate it, the secret was rotated. Stripe keeps every event for 30 days, so this reads them
back from where the last run got to and feeds each one the log has not seen through the same
path as a delivered webhook (`stripe_event_record` + `stripe_event_process`): recorded once,
handled once, whoever gets there first. Running it twice, or beside the webhook, changes
nothing more.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from payments import stripe_api, webhooks
from payments.models import StripeCheckpoint, StripeEvent

logger = logging.getLogger(__name__)

CHECKPOINT = "events"
# Re-read this far behind the checkpoint: an event becomes listable a moment after its
# `created` second, so a run could miss one created just before it started.
OVERLAP_SECONDS = 600
FIRST_RUN_DAYS = 3


@dataclass
class Reconciled:
    since: int
    seen: int = 0
    recorded: int = 0  # new to the log: these never arrived as webhooks
    failed: int = 0


def stripe_reconcile(*, days: int | None = None, now: float | None = None) -> Reconciled:
    """Record and handle every event since the checkpoint (or the last `days` days).

    The checkpoint moves only once every event up to the run's start has been recorded, so
    a run that dies half-way starts again from the same place. Failed handlers stay `failed`
    in the log, for `replay_stripe_events` and the next run. `now` (Unix seconds, default
    the clock's) is when the run counts as started.
    """
    # Events younger than the grace period may still be on their way as webhooks: leave
    # them to the next run (the overlap re-reads them), rather than race their delivery.
    started = int(time.time() if now is None else now) - int(settings.RECONCILE_GRACE_SECONDS)
    checkpoint, _ = StripeCheckpoint.objects.get_or_create(name=CHECKPOINT)
    if days is not None or not checkpoint.position:
        since = started - 86_400 * (FIRST_RUN_DAYS if days is None else days)
    else:
        since = checkpoint.position - OVERLAP_SECONDS
    result = Reconciled(since=since)
    # Done ones only: a failed, waiting or abandoned one (a worker died holding it) is run
    # again; one a live worker holds is left to it by the claim.
    known = set(
        StripeEvent.objects.filter(
            stripe_created__gte=since,
            status__in=[StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED],
        ).values_list("stripe_id", flat=True)
    )
    # Oldest first: the order Stripe created them in, as handlers expect.
    events = [e for e in stripe_api.events_since(since) if (e.get("created") or 0) <= started]
    for event in sorted(events, key=lambda e: e.get("created") or 0):
        result.seen += 1
        if event.get("id") in known:
            continue
        record = webhooks.stripe_event_record(event=event)
        if record.attempts == 0:
            result.recorded += 1
        record = webhooks.stripe_event_process(record=record)
        if record.status == StripeEvent.Status.FAILED:
            result.failed += 1
    with transaction.atomic():
        StripeCheckpoint.objects.filter(pk=checkpoint.pk, position__lt=started).update(
            position=started
        )
    if result.recorded:
        logger.warning(
            "Reconciliation found %s event(s) that never arrived as webhooks", result.recorded
        )
    return result
