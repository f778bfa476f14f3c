"""An order's own steps that need no Stripe: finding it from a session, locking its cart,
and leaving "pending" (giving its reservation back).

A pending goods order holds its stock with store reservations under the key
`reservation_holder(order.pk)`, until `reserved_until`. Store's services do the locking
(products in primary-key order, so two checkouts, or a checkout and a fulfilment, never
deadlock). An order leaves "pending" and gives its reservation back through one path,
`orders_release`: checkout failure, Stripe's expiry, cancel and the sweep once Stripe says
the session expired (payments.settle), and a delayed payment that failed (payments.delayed).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from cart.models import Cart
from payments.models import Order, reservation_holder
from store.reservations import reservations_release


def order_for_session(session: dict[str, Any]) -> Order | None:
    """Our order for this session: the reference, the metadata and the stored id must agree."""
    reference = session.get("client_reference_id") or (session.get("metadata") or {}).get(
        "order_id"
    )
    metadata_id = (session.get("metadata") or {}).get("order_id")
    if not reference or (metadata_id and str(metadata_id) != str(reference)):
        return None
    try:
        pk = int(reference)
    except (TypeError, ValueError):
        return None
    return Order.objects.filter(pk=pk, stripe_session_id=session.get("id") or "-").first()


def order_cart_lock(cart_id: int) -> None:
    """Lock the cart whose lines an order is about to take out (call in a transaction).

    Checkout reads a cart's lines under this lock (payments.checkout), so a checkout that
    starts as an order leaves the cart sees the lines already gone, never ones just bought.
    Lock order: the order's row, then its cart, then products, as checkout (cart, products).
    """
    Cart.objects.select_for_update().filter(pk=cart_id).first()


def orders_release(
    order_ids: list[int],
    *,
    status: str = Order.Status.EXPIRED,
    problem: str = "",
    releasable: tuple[str, ...] = (Order.Status.PENDING,),
) -> int:
    """Pending orders leave "pending" and give back their reservations; returns how many did.

    The one release path (checkout failure, cancel, expiry event, sweep, and a delayed
    payment that failed, which also releases a `processing` order). Only orders still in a
    `releasable` status change: a fulfilment that won an order's row meanwhile keeps it (the
    row lock makes the status check and the change one step).
    """
    with transaction.atomic():
        pending = list(
            Order.objects.select_for_update()
            .filter(pk__in=order_ids, status__in=releasable)
            .values_list("pk", flat=True)
        )
        if not pending:
            return 0
        changes = {"status": status} | ({"problem": problem} if problem else {})
        Order.objects.filter(pk__in=pending).update(**changes)
        reservations_release(holders=[reservation_holder(pk) for pk in pending])
    return len(pending)


def order_fail(*, order_id: int, problem: str) -> bool:
    """Checkout could not open a session for a pending order: fail it, free its stock."""
    return bool(orders_release([order_id], status=Order.Status.FAILED, problem=problem[:2000]))


def order_release(*, order_id: int) -> bool:
    """A pending order gives up its reservation (expired or cancelled). True if it changed."""
    return bool(orders_release([order_id]))
