"""Compare the shop's books with Stripe's: charges, refunds and disputes (payments/books.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from payments.books import DEFAULT_DAYS, DEFAULT_GRACE, books_check


class Command(BaseCommand):
    help = (
        "Compare Stripe's charges, refunds and disputes with the shop's orders, refunds and "
        "disputes for a period; print every difference (both ids). Exit 1 if there are any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=DEFAULT_DAYS, help=f"the period (default {DEFAULT_DAYS})"
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=DEFAULT_GRACE.total_seconds(),
            metavar="SECONDS",
            help="leave objects younger than this to the next run: their events may still be "
            f"on their way (default {DEFAULT_GRACE.total_seconds():g})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        until = timezone.now() - timedelta(seconds=options["grace"])
        report = books_check(since=until - timedelta(days=options["days"]), until=until)
        for difference in report.differences:
            self.stdout.write(str(difference))
        self.stdout.write(
            f"{len(report.differences)} difference(s) between {report.since:%Y-%m-%d %H:%M} "
            f"and {report.until:%Y-%m-%d %H:%M} UTC ({report.new} new, {report.resolved} "
            "resolved)."
        )
        if report.differences:
            raise SystemExit(1)
