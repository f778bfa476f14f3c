"""Writes to carts. The forms in cart/forms.py have checked the input; these only apply it.

Every write announces the cart it changed once committed (`live.publish.publish_on_commit`
under "carts"): every process's memo of the header's count (`store.visitors`) drops it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest

from cart.models import MAX_LINE_QUANTITY, Cart, CartItem
from cart.selectors import SESSION_CART_ID, cart_for_request
from cart.signals import cart_merging
from live.publish import publish_on_commit
from store.models import Product
from store.visitors import CARTS, USERS

logger = logging.getLogger(__name__)


def cart_get_or_create(request: HttpRequest) -> Cart:
    """The cart of the logged-in user, or of this browser session (created on first use)."""
    if request.user.is_authenticated:
        cart, created = Cart.objects.get_or_create(user=request.user)
        if created:  # the header of every session of this user counts it now
            publish_on_commit([request.user.pk], USERS)
        return cart
    existing = cart_for_request(request)
    if existing is not None:
        return existing
    if request.session.session_key is None:
        request.session.save()
    cart, _ = Cart.objects.get_or_create(session_key=request.session.session_key)
    request.session[SESSION_CART_ID] = cart.pk
    return cart


def cart_add(*, cart: Cart, product_id: int, quantity: int) -> CartItem:
    """Add `quantity` units; the line never exceeds MAX_LINE_QUANTITY (the form checked stock)."""
    with transaction.atomic():
        publish_on_commit([cart.pk], CARTS)
        item = CartItem.objects.select_for_update().filter(cart=cart, product_id=product_id).first()
        if item is None:
            item = CartItem.objects.create(
                cart=cart, product_id=product_id, quantity=min(quantity, MAX_LINE_QUANTITY)
            )
        else:
            item.quantity = min(item.quantity + quantity, MAX_LINE_QUANTITY)
            item.save(update_fields=["quantity"])
    return item


def cart_set_quantity(*, cart: Cart, product_id: int, quantity: int) -> int:
    """Set a line's quantity; returns how many lines changed (0 if the product is not in it)."""
    with transaction.atomic():
        publish_on_commit([cart.pk], CARTS)
        return CartItem.objects.filter(cart=cart, product_id=product_id).update(
            quantity=min(quantity, MAX_LINE_QUANTITY)
        )


def cart_remove(*, cart: Cart, product_id: int) -> int:
    with transaction.atomic():
        publish_on_commit([cart.pk], CARTS)
        deleted, _ = CartItem.objects.filter(cart=cart, product_id=product_id).delete()
    return deleted


def cart_remove_products(*, cart_id: int, product_ids: list[int]) -> int:
    """Take these products out of a cart (those just bought); returns how many lines went."""
    with transaction.atomic():
        publish_on_commit([cart_id], CARTS)
        deleted, _ = CartItem.objects.filter(cart_id=cart_id, product_id__in=product_ids).delete()
    return deleted


def cart_merge(*, source: Cart, target: Cart) -> None:
    """Move source's lines into target, capped at what is available and 99 a line."""
    with transaction.atomic():
        publish_on_commit([source.pk, target.pk], CARTS)
        items = list(source.items.all())
        available = {
            p.pk: p.available()
            for p in Product.objects.visible()
            .with_reserved()
            .filter(pk__in=[i.product_id for i in items])
        }
        existing = {i.product_id: i for i in target.items.select_for_update()}
        for item in items:
            limit = min(available.get(item.product_id, 0), MAX_LINE_QUANTITY)
            current = existing.get(item.product_id)
            if current is None:
                quantity = min(item.quantity, limit)
                if quantity >= 1:
                    CartItem.objects.create(
                        cart=target, product_id=item.product_id, quantity=quantity
                    )
            else:
                quantity = max(current.quantity, min(current.quantity + item.quantity, limit))
                if quantity != current.quantity:
                    current.quantity = quantity
                    current.save(update_fields=["quantity"])
        source.delete()


@receiver(user_logged_in, dispatch_uid="cart_merge_on_login")
def cart_merge_on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """The session's cart becomes (or joins) the user's cart when they log in, once its open
    checkout is settled (`cart_merging`)."""
    if request is None or not hasattr(request, "session"):
        return
    cart_id = request.session.pop(SESSION_CART_ID, None)
    if cart_id is None:
        return
    source = Cart.objects.filter(pk=cart_id, user__isnull=True).first()
    if source is None:
        return
    target = Cart.objects.filter(user=user).first()
    cart_merging.send(sender=Cart, cart=source, user=user, target=target)
    if target is None:
        # Nothing to merge into: the session's cart simply changes hands.
        with transaction.atomic():
            publish_on_commit([source.pk], CARTS)
            publish_on_commit([user.pk], USERS)
            Cart.objects.filter(pk=source.pk).update(user=user, session_key=None)
        return
    cart_merge(source=source, target=target)
