"""What one shopper may hold in open checkouts, and how often they may start one.

A shopper is counted three ways at once, each with the same limits: by the address the
checkout came from (`amazin.client_ip`, which follows TRUSTED_PROXY_HOPS behind a proxy), by
the logged-in user, and by the browser's cart (its session). Whichever reaches a limit first
refuses the checkout (CHECKOUT_MAX_UNITS_PER_ADDRESS units held in open checkouts and bank
transfers on their way, CHECKOUT_STARTS_PER_MINUTE checkouts a minute): a script that drops
its cookies is still one address, and a user who moves between networks is still one user.

The count reads only committed checkouts, so checkouts from one shopper are serialised first
(`shopper_lock`): on PostgreSQL a transaction-scoped advisory lock per key, taken in one
order (the keys' numbers, sorted), so two checkouts sharing a key queue and never deadlock.
On SQLite the checkout's IMMEDIATE transaction already holds the database's write lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from payments.models import Order, reservation_holder
from store.models import Reservation


class LimitReached(Exception):
    """The shopper holds, or starts, too much; `message` is meant for them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Shopper:
    """Who is checking out: any of the three may be unknown."""

    client_ip: str = ""
    user_id: int | None = None
    cart_id: int | None = None

    def filters(self) -> list[tuple[str, Q]]:
        """(key, the orders that key counts), for each of the three that is known."""
        found = []
        if self.client_ip:
            found.append((f"ip:{self.client_ip}", Q(client_ip=self.client_ip)))
        if self.user_id is not None:
            found.append((f"user:{self.user_id}", Q(user_id=self.user_id)))
        if self.cart_id is not None:
            found.append((f"cart:{self.cart_id}", Q(cart_id=self.cart_id)))
        return found


def lock_number(key: str) -> int:
    """A key's advisory-lock number: 64 bits of its hash, signed as PostgreSQL's bigint."""
    digest = hashlib.sha256(f"amazin-checkout-limits:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def shopper_lock(shopper: Shopper) -> None:
    """Queue behind any other checkout of this shopper until this transaction ends (call in
    one). A no-op on SQLite, whose writers are serialised already."""
    if connection.vendor != "postgresql":
        return
    numbers = sorted({lock_number(key) for key, _ in shopper.filters()})
    with connection.cursor() as cursor:
        for number in numbers:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


def limits_check(*, shopper: Shopper, units: int, holds_stock: bool) -> None:
    """Refuse (LimitReached) a checkout of `units` units by a shopper who holds, or starts, too
    much. Call in the checkout's transaction, before its order is written: the lock taken
    here makes the next checkout of this shopper wait until that order has committed."""
    filters = shopper.filters()
    if not filters:
        return
    shopper_lock(shopper)
    now = timezone.now()
    for _, orders in filters:
        started = Order.objects.filter(orders, created_at__gte=now - timedelta(minutes=1))
        if started.count() >= settings.CHECKOUT_STARTS_PER_MINUTE:
            raise LimitReached(
                "Too many checkouts started from your connection just now: "
                "please wait a minute and try again."
            )
    if not holds_stock:
        return
    for _, orders in filters:
        held = held_units(orders, now=now)
        if held + units > settings.CHECKOUT_MAX_UNITS_PER_ADDRESS:
            raise LimitReached(
                f"Your connection already holds {held} items in open checkouts: finish or "
                f"cancel one first (at most {settings.CHECKOUT_MAX_UNITS_PER_ADDRESS} at a time)."
            )


def held_units(orders: Q, *, now: datetime) -> int:
    """Units these orders hold now: open checkouts, and bank transfers on their way (those
    hold their stock for hours, so a shopper could otherwise hold the shop with transfers
    that never come)."""
    holding = Q(status=Order.Status.PENDING, reserved_until__gt=now) | Q(
        status=Order.Status.PROCESSING
    )
    holders = [
        reservation_holder(pk)
        for pk in Order.objects.filter(holding, orders).values_list("pk", flat=True)
    ]
    total = Reservation.objects.filter(holder__in=holders, expires_at__gt=now).aggregate(
        n=Sum("quantity")
    )["n"]
    return int(total or 0)
