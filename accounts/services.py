"""Writes and reads for the members' area: who may enter, and how they got (or lost) access.

Payments announces `order_paid` (fulfilment), `order_refunded` (refunded in full),
`order_dispute_lost` (the money taken back by the cardholder's bank) and `order_unrefunded`
(a refund that failed, a lost dispute reversed: the money is the shop's again) inside its own
transaction; the receivers below, connected in accounts/apps.py, grant, revoke and restore the
members' pass for access orders in that same transaction. Both are idempotent: the
database constraints on `Entitlement` (one row per order, one live row per user) are what
make "exactly once" hold under concurrency, not a read-then-write.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Entitlement
from live.publish import publish_on_commit
from payments import checkout
from payments.models import Order
from store.models import Price
from store.visitors import USERS

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

logger = logging.getLogger(__name__)

MEMBERS_AREA = Entitlement.Feature.MEMBERS_AREA


def user_has_access(user: User | AnonymousUser | None) -> bool:
    """True if the user holds a live (unrevoked) members' area entitlement. One query."""
    if user is None or not user.is_authenticated:
        return False
    return Entitlement.objects.live().filter(user_id=user.pk, feature=MEMBERS_AREA).exists()


def entitlement_grant_for_order(*, order: Order) -> Entitlement | None:
    """Grant what a paid access order bought, exactly once per order.

    Safe to call twice, from the webhook and the success page, even at the same moment:
    the insert runs in a savepoint, and losing the race on a unique constraint means the
    other caller's row is the answer. Returns the order's entitlement, the user's existing
    live one (they already had access: no second live row), or None for an order that
    grants nothing (goods, no user, refunded).
    """
    if order.kind != Order.Kind.ACCESS or order.user_id is None:
        return None
    if order.status == Order.Status.REFUNDED:
        return None
    existing = Entitlement.objects.filter(order=order, feature=MEMBERS_AREA).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Entitlement.objects.create(
                user_id=order.user_id,
                order=order,
                feature=MEMBERS_AREA,
                note=f"Bought with order #{order.pk}",
            )
    except IntegrityError:
        pass
    # Lost a race for this order, or the user already had live access from elsewhere.
    existing = Entitlement.objects.filter(order=order, feature=MEMBERS_AREA).first()
    if existing is not None:
        return existing
    logger.info("Order %s paid for access that user %s already had", order.pk, order.user_id)
    return Entitlement.objects.live().filter(user_id=order.user_id, feature=MEMBERS_AREA).first()


def entitlement_revoke_for_order(*, order: Order) -> int:
    """Revoke what a refunded order granted. Returns how many entitlements were revoked.

    If the same user has another paid access order that granted nothing (they paid twice
    before the first payment landed), access moves to that order instead of disappearing.
    """
    with transaction.atomic():
        revoked = (
            Entitlement.objects.live()
            .filter(order=order)
            .update(revoked_at=timezone.now(), revoked_by=None)
        )
        if revoked and order.user_id is not None:
            publish_on_commit([order.user_id], USERS)
            other = (
                Order.objects.paid()
                .filter(user_id=order.user_id, kind=Order.Kind.ACCESS)
                .exclude(pk=order.pk)
                .exclude(entitlements__feature=MEMBERS_AREA)
                .order_by("paid_at", "pk")
                .first()
            )
            if other is not None:
                entitlement_grant_for_order(order=other)
    return revoked


def entitlement_restore_for_order(*, order: Order) -> int:
    """Give back the pass a refund or a lost dispute took from this order, now that the shop
    holds its money again (a refund failed, a dispute was reversed). Returns 1 if restored.

    Only a pass taken away automatically (not by staff), only if the order holds its money,
    and only if the user has no live pass meanwhile (access moved to another paid order).
    """
    if order.kind != Order.Kind.ACCESS or order.user_id is None:
        return 0
    if not order.is_paid or order.amount_disputed:
        return 0
    with transaction.atomic():
        if Entitlement.objects.live().filter(user_id=order.user_id, feature=MEMBERS_AREA).exists():
            return 0
        taken = (
            Entitlement.objects.filter(order=order, feature=MEMBERS_AREA, revoked_by__isnull=True)
            .exclude(revoked_at__isnull=True)
            .order_by("-revoked_at")
            .first()
        )
        if taken is None:
            return 0
        Entitlement.objects.filter(pk=taken.pk).update(revoked_at=None)
        publish_on_commit([order.user_id], USERS)
    return 1


def entitlement_grant(*, user: User, by: User | None, note: str = "") -> Entitlement:
    """Staff grant by hand. If the user already has live access, that row is returned."""
    try:
        with transaction.atomic():
            return Entitlement.objects.create(
                user_id=user.pk, feature=MEMBERS_AREA, granted_by=by, note=note
            )
    except IntegrityError:
        return Entitlement.objects.live().get(user_id=user.pk, feature=MEMBERS_AREA)


def entitlement_revoke(*, entitlement: Entitlement, by: User | None) -> Entitlement:
    """Staff revoke by hand; revoking twice keeps the first revocation's time and author."""
    with transaction.atomic():
        publish_on_commit([entitlement.user_id], USERS)
        Entitlement.objects.filter(pk=entitlement.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=by
        )
    entitlement.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return entitlement


def on_entitlement_saved(sender: Any, *, instance: Entitlement, **kwargs: Any) -> None:
    """post_save: the user's pages (the grid's members' banner) show it in every process."""
    publish_on_commit([instance.user_id], USERS)


def on_order_paid(sender: Any, *, order: Order, **kwargs: Any) -> None:
    """payments.signals.order_paid: a paid access order grants the members' pass."""
    entitlement_grant_for_order(order=order)


def on_order_refunded(sender: Any, *, order: Order, **kwargs: Any) -> None:
    """payments.signals.order_refunded and order_dispute_lost: an access order whose money
    went back loses what it granted."""
    if order.kind == Order.Kind.ACCESS:
        entitlement_revoke_for_order(order=order)


def on_order_unrefunded(sender: Any, *, order: Order, **kwargs: Any) -> None:
    """payments.signals.order_unrefunded: the money came back, and with it the pass."""
    entitlement_restore_for_order(order=order)


# --- Buying the pass -------------------------------------------------------------------------


class PurchaseOutcome(enum.Enum):
    ALREADY_MEMBER = "already_member"  # nothing to buy: to the dashboard
    RESUMED = "resumed"  # an open Checkout Session for the pass exists: back to it
    STARTED = "started"  # a new pending order and Checkout Session
    UNAVAILABLE = "unavailable"  # no access price configured, or Stripe refused


@dataclass(frozen=True)
class AccessPurchase:
    outcome: PurchaseOutcome
    url: str = ""
    order: Order | None = None
    message: str = ""


def access_price() -> Price | None:
    """The price that buys the members' area, from the local copy of the catalog.

    `ACCESS_PRICE_ID` names it; left empty, the demo pass's lookup key finds it.
    """
    prices = Price.objects.filter(active=True, unit_amount__isnull=False).select_related("product")
    if settings.ACCESS_PRICE_ID:
        return prices.filter(stripe_id=settings.ACCESS_PRICE_ID).first()
    return prices.filter(lookup_key=settings.ACCESS_PRICE_LOOKUP_KEY).first()


def access_purchase_start(*, user: User) -> AccessPurchase:
    """Send a logged-in user to pay for the pass, once.

    An entitled user is not charged again; a user with a pending pass order (two tabs, a back
    button, a double click) goes back to its session rather than getting a second one: the
    checkout path keeps one open pass checkout per user, under the user's row lock, and asks
    Stripe only after that lock is released (no network call inside a transaction).
    """
    if user_has_access(user):
        return AccessPurchase(outcome=PurchaseOutcome.ALREADY_MEMBER)
    price = access_price()
    if price is None:
        logger.warning(
            "No access price: ACCESS_PRICE_ID=%r, lookup key %r not in the local catalog",
            settings.ACCESS_PRICE_ID,
            settings.ACCESS_PRICE_LOOKUP_KEY,
        )
        return AccessPurchase(
            outcome=PurchaseOutcome.UNAVAILABLE,
            message="The members' pass is not on sale right now. Please try again later.",
        )
    if price.product.price_id != price.pk:
        # Checkout sells a product at its current price; charging that one would not be the
        # price the owner configured, so refuse rather than take the wrong amount.
        logger.error(
            "ACCESS_PRICE_ID %s is not the current price of %s: make it the product's "
            "default price in Stripe",
            price.stripe_id,
            price.product.stripe_id,
        )
        return AccessPurchase(
            outcome=PurchaseOutcome.UNAVAILABLE,
            message="The members' pass is not on sale right now. Please try again later.",
        )
    asked = timezone.now()
    try:
        started = checkout.checkout_start(
            user=user,
            lines=[checkout.LineRequest(product_id=price.product_id, quantity=1)],
            kind=Order.Kind.ACCESS,
            email=getattr(user, "email", ""),
        )
    except checkout.CheckoutError as exc:
        logger.warning("Access checkout for user %s failed: %s", user.pk, exc)
        return AccessPurchase(
            outcome=PurchaseOutcome.UNAVAILABLE,
            message="We could not start the payment just now. Please try again in a moment.",
        )
    resumed = started.order.created_at < asked
    return AccessPurchase(
        outcome=PurchaseOutcome.RESUMED if resumed else PurchaseOutcome.STARTED,
        url=started.url,
        order=started.order,
    )
