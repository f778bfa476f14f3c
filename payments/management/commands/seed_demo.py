"""Create the demo catalog in Stripe (the emulator or real test mode) and stock it locally.

Safe to run again: products are found by their `amazin_seed` metadata, the shipping rates
(settings.SHIPPING_RATES) by theirs, the demo promotion code (WELCOME10) by its text, and
nothing is created twice. The local copy is filled in at once (the webhooks that follow change
nothing), and products that were never stocked get their starting stock.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.templatetags.static import static

from payments import promotions, shipping, stripe_api
from store import live, services
from store.demo.catalog import ACCESS_PASS, PRODUCTS, DemoProduct
from store.models import Product

# The demo catalog's prices are in dollars, so its shipping rates are too.
DEMO_CURRENCY = "usd"


class Command(BaseCommand):
    help = "Create the demo products and the members' pass in Stripe, and stock them."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            existing = {
                p["metadata"].get("amazin_seed"): p
                for p in stripe_api.products_iter()
                if (p.get("metadata") or {}).get("amazin_seed")
            }
            created = 0
            for demo in [*PRODUCTS, ACCESS_PASS]:
                if demo.slug not in existing:
                    existing[demo.slug] = self._create(demo)
                    created += 1
            shipping.shipping_rate_ids(currency=DEMO_CURRENCY)
            promo, promo_created = promotions.demo_promotion_code_ensure()
        except stripe_api.StripeError as exc:
            raise CommandError(f"Stripe refused: {exc}") from exc

        stocked = self._apply_locally([existing[d.slug] for d in [*PRODUCTS, ACCESS_PASS]])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo catalog: {created} products created in Stripe, "
                f"{len(PRODUCTS) + 1 - created} already there, {stocked} stocked; "
                f"promotion code {promo['code']} "
                f"{'created' if promo_created else 'already there'}."
            )
        )

    def _create(self, demo: DemoProduct) -> dict[str, Any]:
        is_pass = demo is ACCESS_PASS
        product = stripe_api.product_create(
            name=demo.name,
            description=demo.description,
            images=[f"{settings.SITE_URL}{static(f'img/products/{demo.slug}.svg')}"],
            metadata={"amazin_seed": demo.slug}
            | ({"category": demo.category} if demo.category else {}),
        )
        price = stripe_api.price_create(
            product_id=product["id"],
            unit_amount=demo.unit_amount,
            currency="usd",
            lookup_key=settings.ACCESS_PRICE_LOOKUP_KEY if is_pass else "",
        )
        return stripe_api.product_set_default_price(product["id"], price["id"])

    def _apply_locally(self, stripe_products: list[dict[str, Any]]) -> int:
        now = int(time.time())
        prices = {p["id"]: p for p in stripe_api.prices_iter()}
        for obj in stripe_products:
            services.product_upsert_from_stripe(obj=obj, event_created=now, current=True)
            price = prices.get(obj.get("default_price") or "")
            if price:
                services.price_upsert_from_stripe(obj=price, event_created=now, current=True)
        starting = {d.slug: d.stock for d in PRODUCTS}
        stocked = 0
        unsold = Product.objects.filter(
            stripe_id__in=[o["id"] for o in stripe_products], stock=0, order_lines__isnull=True
        )
        for product in unsold:
            stock = starting.get(product.metadata.get("amazin_seed"), 0)
            if stock:
                Product.objects.filter(pk=product.pk).update(stock=stock)
                live.publish_on_commit([product.pk])
                stocked += 1
        return stocked
