"""Writes to stock: hold units for a while (reserve), give them back (release), and sell them
(take).

A reservation belongs to a `holder`, an opaque key its caller chooses (payments uses
"order:<pk>"), so the catalog knows nothing of who holds stock or why. Available means stock
minus unexpired reservations. Every write locks the products it touches in primary-key order,
the same order in every writer, so two of them never deadlock; stock only goes down through a
conditional UPDATE, so it never goes below zero whatever runs at the same time. Each change is
published to live grids after commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F

from store import live
from store.models import Product, Reservation


class ReservationError(Exception):
    """Not enough available; `message` is meant for the shopper."""

    def __init__(self, message: str, *, product: Product, available: int) -> None:
        super().__init__(message)
        self.message = message
        self.product = product
        self.available = available


@dataclass(frozen=True)
class Shortage:
    """What `stock_take` could not take: `wanted` units of `product`, only `stock` on hand."""

    product: Product
    wanted: int
    stock: int


def products_lock(product_ids: Iterable[int]) -> list[Product]:
    """Lock these products (with their price) in primary-key order; call in a transaction."""
    return list(
        Product.objects.select_for_update(of=("self",))
        .select_related("price")
        .filter(pk__in=set(product_ids))
        .order_by("pk")
    )


def available_by_product(product_ids: Iterable[int]) -> dict[int, int]:
    """Stock minus unexpired reservations, per product (0 at least). One query."""
    return {
        product.pk: product.available()
        for product in Product.objects.filter(pk__in=set(product_ids)).with_reserved()
    }


def reservation_create(*, holder: str, quantities: dict[int, int], expires_at: datetime) -> None:
    """Hold `quantities` (product id -> units) for `holder` until `expires_at`, all or nothing.

    Raises ReservationError, with a message for the shopper, for the first product (in pk
    order) that has fewer units available than wanted. Runs in the caller's transaction if
    there is one, so a caller that also writes (an order) gets both or neither.
    """
    with transaction.atomic():
        products = products_lock(quantities)
        # Read after taking the locks: every reservation committed before is counted.
        available = available_by_product(quantities)
        for product in products:
            left = available.get(product.pk, 0)
            if quantities[product.pk] > left:
                raise ReservationError(
                    f"Sorry, {product.name} is sold out."
                    if left == 0
                    else f"Sorry, only {left} of {product.name} left: "
                    "lower the quantity and try again.",
                    product=product,
                    available=left,
                )
        Reservation.objects.bulk_create(
            Reservation(
                product=product,
                quantity=quantities[product.pk],
                holder=holder,
                expires_at=expires_at,
            )
            for product in products
        )
        live.publish_on_commit([product.pk for product in products])


def reservations_extend(*, holder: str, expires_at: datetime) -> list[int]:
    """Hold what `holder` holds until `expires_at` (later only; never shortened); returns the
    product ids. Checks no availability: a hold that had already run out comes back even if
    its units were reserved meanwhile, and the first to pay takes them (see `stock_take`)."""
    with transaction.atomic():
        held = Reservation.objects.filter(holder=holder)
        product_ids = sorted(set(held.values_list("product_id", flat=True)))
        if product_ids:
            products_lock(product_ids)
            held.filter(expires_at__lt=expires_at).update(expires_at=expires_at)
            live.publish_on_commit(product_ids)
    return product_ids


def reservations_release(*, holders: Iterable[str]) -> list[int]:
    """Give back everything these holders hold (expired or not); returns the product ids."""
    holders = list(holders)
    with transaction.atomic():
        released = Reservation.objects.filter(holder__in=holders)
        product_ids = sorted(set(released.values_list("product_id", flat=True)))
        if product_ids:
            released.delete()
            live.publish_on_commit(product_ids)
    return product_ids


def stock_take(*, holder: str, quantities: dict[int, int]) -> Shortage | None:
    """Sell: take `quantities` off the shelf, all or nothing, and drop `holder`'s reservations.

    Whether or not the units were still reserved (a hold may have run out), each product's
    stock goes down with one `UPDATE ... WHERE stock >= quantity`. If any product is short,
    nothing is taken, the reservations stay, and the first shortage is returned.

    On purpose, other holders' live reservations are not counted: a sale whose own hold ran
    out (a payment completed at the session's last second, a bank transfer whose hold had
    lapsed before it was renewed) takes units that someone else may have reserved since. The
    caller has the money in hand; the later holder may never pay. If they do, their own
    take finds the stock short and payments refunds them automatically and tells them
    (payments.fulfilment.fulfil_checkout_session), so at most the sale that would be refunded
    anyway is, and nothing is ever oversold.
    """
    with transaction.atomic():
        products = {product.pk: product for product in products_lock(quantities)}
        sid = transaction.savepoint()
        for product_id in sorted(quantities):
            wanted = quantities[product_id]
            taken = Product.objects.filter(pk=product_id, stock__gte=wanted).update(
                stock=F("stock") - wanted
            )
            if not taken:
                transaction.savepoint_rollback(sid)
                stock = Product.objects.filter(pk=product_id).values_list("stock", flat=True)
                return Shortage(
                    product=products[product_id], wanted=wanted, stock=stock.first() or 0
                )
        transaction.savepoint_commit(sid)
        Reservation.objects.filter(holder=holder).delete()
        live.publish_on_commit(sorted(quantities))
    return None


def stock_return(*, quantities: dict[int, int]) -> None:
    """Put units back on the shelf (a refunded order's goods came back), and say so live."""
    if not quantities:
        return
    with transaction.atomic():
        products_lock(quantities)
        for product_id in sorted(quantities):
            if quantities[product_id] > 0:
                Product.objects.filter(pk=product_id).update(
                    stock=F("stock") + quantities[product_id]
                )
        live.publish_on_commit(sorted(quantities))
