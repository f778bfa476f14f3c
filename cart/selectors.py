from __future__ import annotations

from django.db.models import Sum
from django.http import HttpRequest

from cart.models import Cart, CartItem


def cart_for_request(request: HttpRequest) -> Cart | None:
    """The cart of this browser (or of the logged-in user), without creating one."""
    if request.user.is_authenticated:
        return Cart.objects.filter(user=request.user).first()
    if not request.session.session_key:
        return None
    return Cart.objects.filter(session_key=request.session.session_key).first()


def cart_item_count(request: HttpRequest) -> int:
    cart = cart_for_request(request)
    if cart is None:
        return 0
    return CartItem.objects.filter(cart=cart).aggregate(n=Sum("quantity"))["n"] or 0
