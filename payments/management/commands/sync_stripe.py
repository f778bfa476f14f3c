"""Copy every product and price from Stripe: for a cold start, or after missed webhooks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from payments import stripe_api
from store import services
from store.services import Applied


class Command(BaseCommand):
    help = "Page through all Stripe products and prices and upsert them locally."

    def handle(self, *args: Any, **options: Any) -> None:
        # Objects listed now are at least as new as any event created before this moment.
        as_of = int(time.time())
        try:
            products = self._fetch("products", stripe_api.products_iter())
            prices = self._fetch("prices", stripe_api.prices_iter())
        except stripe_api.StripeError as exc:
            raise CommandError(f"Stripe refused the listing: {exc}") from exc

        counts: Counter[str] = Counter()
        product_results = self._apply(
            "products", products, services.product_upsert_from_stripe, as_of
        )
        counts.update(product_results)
        counts.update(self._apply("prices", prices, services.price_upsert_from_stripe, as_of))
        archived = sum(
            1
            for obj, result in zip(products, product_results, strict=True)
            if result == Applied.UPDATED and not obj.get("active")
        )
        archived += services.products_archive_missing(
            seen_stripe_ids={obj["id"] for obj in products}, as_of=as_of
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Synced {len(products)} products and {len(prices)} prices: "
                f"{counts[Applied.CREATED]} created, {counts[Applied.UPDATED]} updated, "
                f"{counts[Applied.UNCHANGED] + counts[Applied.STALE]} unchanged, "
                f"{archived} archived."
            )
        )

    def _fetch(self, label: str, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        fetched = []
        for obj in objects:
            fetched.append(obj)
            if len(fetched) % 100 == 0:
                self.stdout.write(f"\rfetching {label}: {len(fetched)}", ending="")
        self.stdout.write(f"\rfetched {label}: {len(fetched)}")
        return fetched

    def _apply(
        self,
        label: str,
        objects: list[dict[str, Any]],
        upsert: Callable[..., Applied],
        as_of: int,
    ) -> list[Applied]:
        results = []
        total = len(objects)
        for done, obj in enumerate(objects, start=1):
            results.append(upsert(obj=obj, event_created=as_of, current=True))
            self._progress(label, done, total)
        if total:
            self.stdout.write("")
        return results

    def _progress(self, label: str, done: int, total: int, width: int = 30) -> None:
        filled = width * done // total
        bar = "#" * filled + "-" * (width - filled)
        self.stdout.write(f"\r{label:<9} [{bar}] {done}/{total}", ending="")
