"""The background worker: emails, refunds, webhook events, reconciliation, the sweep."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from live.publish import publishes_coalesced, publishes_flush
from payments.tasks import periodic_start
from payments.worker import BATCH, Worker

# The worker's changes come in bursts (a webhook storm, a sync): announced together, up to
# this late, so that every web process renders each changed card once per burst; whatever
# is held leaves at once when the queue runs dry (a lone change waits for nothing).
PUBLISH_EVERY_SECONDS = 0.05


class Command(BaseCommand):
    help = (
        "Run queued work (emails, refunds, Stripe events) and the periodic reconciliation "
        "and reservation sweep, as soon as it is committed. Run one or more beside the web "
        "server (make serve starts SHOP_WORKERS of them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=5.0,
            help="seconds between looks at the queue when nothing wakes the worker (a "
            "backstop: a committed task wakes it at once)",
        )
        parser.add_argument(
            "--batch-size", type=int, default=BATCH, help="tasks claimed at once (default 32)"
        )
        parser.add_argument(
            "--batch", action="store_true", help="run what is due, then exit (for tests, cron)"
        )
        parser.add_argument(
            "--no-periodic",
            action="store_true",
            help="do not start the periodic reconciliation and sweep (they run elsewhere)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_periodic"]:
            periodic_start()
        worker = Worker(
            interval=options["interval"],
            batch=options["batch_size"],
            once=options["batch"],
            on_idle=publishes_flush,
        )
        if not options["batch"]:  # a run in a test or from cron is stopped like any command
            signal.signal(signal.SIGTERM, worker.stop)
            signal.signal(signal.SIGINT, worker.stop)
        # What is held back is sent when the worker stops: nothing is lost.
        with publishes_coalesced(PUBLISH_EVERY_SECONDS):
            worker.run()
