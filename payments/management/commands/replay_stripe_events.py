"""Run the handlers of webhook events that failed, once more (after a fix, or an outage)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from payments import webhooks
from payments.models import StripeEvent


class Command(BaseCommand):
    help = "Process failed Stripe webhook events again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event_ids", nargs="*", help="Stripe event ids (default: all failed)")

    def handle(self, *args: Any, **options: Any) -> None:
        events = StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).order_by(
            "stripe_created", "id"
        )
        if options["event_ids"]:
            events = events.filter(stripe_id__in=options["event_ids"])
        fixed = failed = 0
        for event in events:
            result = webhooks.stripe_event_process(record=event)
            if result.status == StripeEvent.Status.FAILED:
                failed += 1
                self.stderr.write(f"{event.stripe_id} ({event.type}) failed again: {result.error}")
            else:
                fixed += 1
        self.stdout.write(f"Replayed {fixed + failed} events: {fixed} processed, {failed} failed.")
