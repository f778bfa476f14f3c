"""Stripe's catalog into the shop: payments fetches, store applies.

Store's upserts never call Stripe. When an event is from the same second as the one already
applied to an object, their order is unknown and store answers `NEEDS_CURRENT`; this module
then reads the object as Stripe has it now and applies that instead of either payload.
"""

from __future__ import annotations

from typing import Any

from payments import stripe_api
from store import services as catalog
from store.services import Applied


def product_apply(*, obj: dict[str, Any], event_created: int) -> Applied:
    """Apply a product (or its `deleted` stub) from an event."""
    applied = catalog.product_upsert_from_stripe(obj=obj, event_created=event_created)
    if applied is Applied.NEEDS_CURRENT:
        applied = catalog.product_upsert_from_stripe(
            obj=stripe_api.product_current(obj["id"]), event_created=event_created, current=True
        )
    return applied


def price_apply(*, obj: dict[str, Any], event_created: int) -> Applied:
    """Apply a price (or its `deleted` stub) from an event."""
    applied = catalog.price_upsert_from_stripe(obj=obj, event_created=event_created)
    if applied is Applied.NEEDS_CURRENT:
        applied = catalog.price_upsert_from_stripe(
            obj=stripe_api.price_current(obj["id"]), event_created=event_created, current=True
        )
    return applied
