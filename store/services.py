"""Writes to the catalog: apply Stripe's view of a product or price to the local copy.

Stripe does not promise event order, so each row remembers the `created` time of the newest
event applied to it; an older event changes nothing. `created` has one-second resolution:
for an event from the same second as the last one applied, their order is unknown, so
neither payload is trusted: the upsert changes nothing and answers `NEEDS_CURRENT`, and the
caller (payments, the one package that talks to Stripe) fetches the object's current state
and applies that with `current=True`.
A price may arrive before its product:
the product row is then created empty and inactive, and filled in when its own event (or a
`sync_stripe`) comes, so the end state is the same in any order.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from store import live
from store.models import Price, Product


class Applied(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    # Same-second tie with what is applied: fetch the object from Stripe, apply it as current.
    NEEDS_CURRENT = "needs_current"


def _stripe_id(value: Any) -> str:
    """A reference may be an id or, when expanded, the object itself."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def _category(metadata: dict[str, Any]) -> dict[str, str]:
    """`metadata.category` as the shop files the product (and its URL slug)."""
    name = str(metadata.get("category") or "").strip()[:100]
    return {"category": name, "category_slug": slugify(name)[:100]}


def _product_fields(obj: dict[str, Any]) -> dict[str, Any]:
    deleted = bool(obj.get("deleted"))
    fields: dict[str, Any] = {"active": bool(obj.get("active")) and not deleted, "deleted": deleted}
    if "name" in obj:  # the `deleted` stub carries no other field
        fields |= {
            "name": obj.get("name") or "",
            "description": obj.get("description") or "",
            "images": list(obj.get("images") or []),
            "metadata": dict(obj.get("metadata") or {}),
            "default_price_stripe_id": _stripe_id(obj.get("default_price")),
        }
        fields |= _category(fields["metadata"])
    return fields


def _price_fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "unit_amount": obj.get("unit_amount"),
        "currency": (obj.get("currency") or "").lower(),
        "active": bool(obj.get("active")) and not obj.get("deleted"),
        "type": obj.get("type") or Price.Type.ONE_TIME,
        "lookup_key": obj.get("lookup_key") or "",
        "stripe_created": obj.get("created") or 0,
    }


def _assign(row: Product | Price, fields: dict[str, Any]) -> set[str]:
    """Set these fields on `row`; the names of those that changed."""
    changed = set()
    for name, value in fields.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.add(name)
    return changed


def _product_refresh_price(product: Product) -> None:
    """Point `product.price` at what the shop sells: the active default, else the newest."""
    prices = product.prices.filter(active=True)
    chosen = (
        prices.filter(stripe_id=product.default_price_stripe_id).first()
        if product.default_price_stripe_id
        else None
    ) or prices.filter(type=Price.Type.ONE_TIME).first()
    if product.price_id != (chosen.pk if chosen else None):
        product.price = chosen
        product.save(update_fields=["price", "updated_at"])


def _save_applied(
    row: Product | Price,
    product: Product,
    *,
    created: bool,
    changed: bool,
    at: int,
    refresh_price: bool = True,
) -> Applied:
    """Save what an event changed; an event that changed nothing only moves the clock.
    `refresh_price`: the change may change which price the product sells at."""
    row.stripe_event_created = at
    if not (created or changed):
        row.save(update_fields=["stripe_event_created"])
        return Applied.UNCHANGED
    row.save()
    if refresh_price:
        _product_refresh_price(product)
    live.publish_on_commit([product.pk], listing=True)
    return Applied.CREATED if created else Applied.UPDATED


def _product_locked(stripe_id: str) -> tuple[Product, bool]:
    """The product, locked; created empty if unseen. One query when it exists."""
    product = Product.objects.select_for_update().filter(stripe_id=stripe_id).first()
    if product is not None:
        return product, False
    product, created = Product.objects.get_or_create(stripe_id=stripe_id)
    if not created:  # another event created it meanwhile
        product = Product.objects.select_for_update().get(pk=product.pk)
    return product, created


def _product_insert(stripe_id: str, fields: dict[str, Any], *, at: int) -> Product | None:
    """A product unseen so far, in one INSERT (no price can point at it yet: nothing to
    refresh); None if another event created it meanwhile."""
    try:
        with transaction.atomic():  # a savepoint: losing the race loses nothing else
            return Product.objects.create(stripe_id=stripe_id, stripe_event_created=at, **fields)
    except IntegrityError:
        return None


@transaction.atomic
def product_upsert_from_stripe(
    *, obj: dict[str, Any], event_created: int, current: bool = False
) -> Applied:
    """Create or update the local product from a Stripe product (or its `deleted` stub).

    `current`: `obj` was just read from the API (a listing or a re-read), not taken from an
    event. An event from the same second as the one applied changes nothing and answers
    `NEEDS_CURRENT`.
    """
    product = Product.objects.select_for_update().filter(stripe_id=obj["id"]).first()
    created = False
    if product is None:
        new = _product_insert(obj["id"], _product_fields(obj), at=event_created)
        if new is not None:
            live.publish_on_commit([new.pk], listing=True)
            return Applied.CREATED
        product, created = _product_locked(obj["id"])  # another event created it meanwhile
    if event_created < product.stripe_event_created:
        return Applied.STALE
    if event_created == product.stripe_event_created and not (created or current):
        return Applied.NEEDS_CURRENT
    changed = _assign(product, _product_fields(obj))
    # Which price it sells at moves with its default price here, and with its prices' own
    # events (price_upsert_from_stripe): a rename leaves it alone.
    return _save_applied(
        product,
        product,
        created=created,
        changed=bool(changed),
        at=event_created,
        refresh_price=created or "default_price_stripe_id" in changed,
    )


@transaction.atomic
def price_upsert_from_stripe(
    *, obj: dict[str, Any], event_created: int, current: bool = False
) -> Applied:
    """Create or update the local price; its product row is created empty if unseen yet."""
    product, _ = _product_locked(_stripe_id(obj.get("product")))
    price = Price.objects.select_for_update().filter(stripe_id=obj["id"]).first()
    created = price is None
    if price is None:
        price = Price(stripe_id=obj["id"], product=product)
    elif event_created < price.stripe_event_created:
        return Applied.STALE
    elif event_created == price.stripe_event_created and not current:
        return Applied.NEEDS_CURRENT
    changed = _assign(price, _price_fields(obj) | {"product": product})
    return _save_applied(price, product, created=created, changed=bool(changed), at=event_created)


@transaction.atomic
def products_archive_missing(*, seen_stripe_ids: set[str], as_of: int) -> int:
    """After a full sync: products Stripe no longer has are deleted there; hide them here."""
    missing = list(
        Product.objects.filter(active=True, stripe_event_created__lte=as_of)
        .exclude(stripe_id__in=seen_stripe_ids)
        .values_list("pk", flat=True)
    )
    Product.objects.filter(pk__in=missing).update(active=False, deleted=True)
    live.publish_on_commit(missing, listing=True)
    return len(missing)
