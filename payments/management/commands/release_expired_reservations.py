"""Release stock held by Checkout Sessions that ran out, even if Stripe's event never came."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from payments.settle import reservations_release_expired


class Command(BaseCommand):
    help = "Expire pending orders whose stock reservation has run out."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, default=0, metavar="SECONDS", help="repeat every SECONDS"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        while True:
            released = reservations_release_expired()
            if released or not every:
                self.stdout.write(f"Released {released} expired reservations.")
            if not every:
                return
            close_old_connections()
            time.sleep(every)
