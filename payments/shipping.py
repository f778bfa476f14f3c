"""Shipping: which countries and rates Checkout offers, and what the paid session says.

Rates are Stripe objects (`shipping_rate`), made once per (key, currency, amount, name)
from `settings.SHIPPING_RATES`, found again by their metadata, and referred to by id. The
creating call carries an idempotency key derived from the same things, so two processes
that both miss the rate at once still make one (Stripe keeps keys for 24 hours; after that
the metadata lookup finds it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments import stripe_api
from payments.emails import order_email
from payments.models import Order, OrderEvent

logger = logging.getLogger(__name__)

RATE_KEY = "amazin_shipping_rate"

_cache: dict[tuple[str, str, int, str], str] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class RateSpec:
    key: str
    display_name: str
    amount: int


def rate_specs() -> list[RateSpec]:
    """`settings.SHIPPING_RATES` ("key:Display name:amount,...") parsed."""
    specs = []
    for item in (settings.SHIPPING_RATES or "").split(","):
        if not item.strip():
            continue
        key, _, rest = item.strip().partition(":")
        name, _, amount = rest.rpartition(":")
        if not key or not name or not amount.strip().isdigit():
            raise ValueError(f"SHIPPING_RATES: {item!r} is not key:Display name:amount")
        specs.append(RateSpec(key=key.strip(), display_name=name.strip(), amount=int(amount)))
    return specs


def shipping_countries() -> list[str]:
    return [c.strip().upper() for c in settings.SHIPPING_COUNTRIES if c.strip()]


def _idempotency_key(spec: RateSpec, currency: str) -> str:
    """Derived from the spec on purpose (not random): every process that misses the same
    rate sends the same key. Hashed from a JSON list, not joined text, so two different
    specs can never read alike ("a|b" + "c" against "a" + "b|c"); a reset database changes
    nothing here, since the same spec makes the same rate."""
    spec_text = json.dumps([spec.key, currency, spec.amount, spec.display_name])
    digest = hashlib.sha256(spec_text.encode())
    return f"amazin-shipping-rate-{digest.hexdigest()[:32]}"


def _matches(rate: dict[str, Any], spec: RateSpec, currency: str) -> bool:
    fixed = rate.get("fixed_amount") or {}
    return (
        (rate.get("metadata") or {}).get(RATE_KEY) == spec.key
        and fixed.get("currency") == currency
        and fixed.get("amount") == spec.amount
        and rate.get("display_name") == spec.display_name
    )


def shipping_rate_ids(*, currency: str) -> list[str]:
    """The Stripe ids of the configured rates in `currency`, made at Stripe if missing."""
    specs = rate_specs()
    wanted = [(s.key, currency, s.amount, s.display_name) for s in specs]
    with _cache_lock:
        if all(w in _cache for w in wanted):
            return [_cache[w] for w in wanted]
    existing = list(stripe_api.shipping_rates_active())
    ids = []
    for spec, cache_key in zip(specs, wanted, strict=True):
        found = next((r for r in existing if _matches(r, spec, currency)), None)
        if found is None:
            found = stripe_api.shipping_rate_create(
                display_name=spec.display_name,
                amount=spec.amount,
                currency=currency,
                metadata={RATE_KEY: spec.key},
                idempotency_key=_idempotency_key(spec, currency),
            )
            logger.info("Created shipping rate %s (%s)", found["id"], spec.display_name)
        with _cache_lock:
            _cache[cache_key] = found["id"]
        ids.append(found["id"])
    return ids


def cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def session_details(session: dict[str, Any]) -> dict[str, Any]:
    """Order fields from a re-retrieved session (never from a webhook payload).

    Reads `collected_information.shipping_details` (or the older top-level
    `shipping_details`), `shipping_cost` with its expanded rate, `total_details` and
    `amount_subtotal`. The promotion code's text is looked up at Stripe: call this outside
    any transaction.
    """
    totals = session.get("total_details") or {}
    collected = session.get("collected_information") or {}
    shipping = collected.get("shipping_details") or session.get("shipping_details") or {}
    address = shipping.get("address") or {}
    cost = session.get("shipping_cost") or {}
    rate = cost.get("shipping_rate")
    rate_id = rate.get("id", "") if isinstance(rate, dict) else (rate or "")
    rate_name = rate.get("display_name", "") if isinstance(rate, dict) else ""
    fields: dict[str, Any] = {
        "amount_subtotal": session.get("amount_subtotal") or 0,
        "amount_discount": totals.get("amount_discount") or 0,
        "amount_shipping": totals.get("amount_shipping") or 0,
        "amount_tax": totals.get("amount_tax") or 0,
        "shipping_name": shipping.get("name") or "",
        "shipping_line1": address.get("line1") or "",
        "shipping_line2": address.get("line2") or "",
        "shipping_city": address.get("city") or "",
        "shipping_postal_code": address.get("postal_code") or "",
        "shipping_state": address.get("state") or "",
        "shipping_country": (address.get("country") or "")[:2],  # Stripe's two-letter code
        "shipping_rate_id": rate_id,
        "shipping_rate_name": rate_name,
        "promotion_code": _promotion_codes(session),
    }
    return fields


def _promotion_codes(session: dict[str, Any]) -> str:
    codes = []
    for discount in session.get("discounts") or []:
        promo = discount.get("promotion_code")
        if isinstance(promo, dict):
            codes.append(promo.get("code") or "")
        elif promo:
            try:
                codes.append(stripe_api.promotion_code_retrieve(promo).get("code") or "")
            except stripe_api.StripeError as exc:
                logger.warning("Promotion code %s: %s", promo, exc)
                codes.append(promo)
    return ", ".join(c for c in codes if c)


class ShippingError(Exception):
    """The order cannot be marked shipped; the message is for staff."""


def order_mark_shipped(
    *, order_id: int, carrier: str, tracking_number: str, actor: Any = None
) -> Order:
    """Staff sent the parcel: record carrier and tracking, log it, email the shopper."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.kind != Order.Kind.GOODS:
            raise ShippingError(f"{order} is a members' pass: there is nothing to ship.")
        if not order.is_paid:
            raise ShippingError(f"{order} is {order.get_status_display().lower()}: not shipped.")
        if order.shipped_at is not None:
            raise ShippingError(f"{order} was already marked shipped.")
        order.shipped_at = timezone.now()
        order.carrier = carrier.strip()
        order.tracking_number = tracking_number.strip()
        order.save(update_fields=["shipped_at", "carrier", "tracking_number"])
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.SHIPPED,
            message=f"{order.carrier} {order.tracking_number}".strip(),
            actor=actor if getattr(actor, "is_authenticated", False) else None,
        )
        order_email(
            order=order,
            template="order_shipped",
            subject=f"Your Amazin order #{order.pk} has shipped",
        )
    return order
