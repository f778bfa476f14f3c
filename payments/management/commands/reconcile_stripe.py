"""Read Stripe's Events API for events whose webhooks never arrived, and handle them."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from payments import stripe_api
from payments.reconcile import stripe_reconcile


class Command(BaseCommand):
    help = "Catch up on Stripe events that never arrived as webhooks (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="read this many days back (default: from "
            "the last run's checkpoint; 3 days on the first run)",
        )
        parser.add_argument(
            "--every", type=float, default=0, metavar="SECONDS", help="repeat every SECONDS"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        days = options["days"]
        while True:
            try:
                result = stripe_reconcile(days=days)
            except stripe_api.StripeError as exc:
                if not every:
                    raise
                self.stderr.write(f"Stripe unreachable, trying again in {every:g}s: {exc}")
            else:
                if result.recorded or result.failed or not every:
                    self.stdout.write(
                        f"Read {result.seen} events since {result.since}: {result.recorded} "
                        f"had never arrived, {result.failed} failed."
                    )
            if not every:
                return
            days = None  # only the first pass goes back further than the checkpoint
            close_old_connections()
            time.sleep(every)
