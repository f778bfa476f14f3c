"""The background worker: emails, refunds, webhook events, reconciliation, the sweep."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from live.publish import publishes_coalesced
from payments.tasks import periodic_start

# The worker's changes come in bursts (a webhook storm, a sync): announced together, up to
# this late, so that every web process renders each changed card once per burst.
PUBLISH_EVERY_SECONDS = 0.05


class Command(BaseCommand):
    help = (
        "Run queued work (emails, refunds, Stripe events) and the periodic reconciliation "
        "and reservation sweep. Run one or more beside the web server."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval", type=float, default=0.5, help="seconds between looks at the queue"
        )
        parser.add_argument(
            "--batch", action="store_true", help="run what is due, then exit (for tests, cron)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        periodic_start()
        # What is held back is sent when the worker stops: nothing is lost.
        with publishes_coalesced(PUBLISH_EVERY_SECONDS):
            call_command(
                "db_worker",
                interval=options["interval"],
                batch=options["batch"],
                reload=False,
                startup_delay=False,
                verbosity=options["verbosity"],
            )
