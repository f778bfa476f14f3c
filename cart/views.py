"""The cart pages: thin views over cart/forms.py (input) and cart/services.py (writes).

Every POST works as a plain form (redirect to the cart with a message) and as an htmx
request (the messages fragment plus an out-of-band header count, no page reload).
A rejected input answers 400, or 409 when only the stock is short; the cart is unchanged.
"""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from cart import services
from cart.forms import CartAddForm, CartRemoveForm, CartUpdateForm
from cart.selectors import cart_for_request, cart_view, visitor
from live.channel import CARDS
from pagecache.cache import caching, pages
from pagecache.changes import Depends, changes
from store.views import Build, serve_page
from store.visitors import CARTS, MEMO_SECONDS


class HtmxHttpRequest(HttpRequest):
    """What django-htmx's middleware makes of every request (its documented typing idiom)."""

    htmx: HtmxDetails


def _answer(request: HtmxHttpRequest, status: HTTPStatus) -> HttpResponse:
    if request.htmx:
        return render(request, "cart/includes/_feedback.html", status=status)
    if status == HTTPStatus.OK:
        return redirect("cart:detail")
    return render(
        request, "cart/detail.html", {"cart": cart_view(cart_for_request(request))}, status=status
    )


def _rejected(
    request: HtmxHttpRequest, form: CartAddForm | CartUpdateForm | CartRemoveForm
) -> HttpResponse:
    messages.error(request, form.message())
    conflict = isinstance(form, CartAddForm | CartUpdateForm) and form.is_conflict()
    return _answer(request, HTTPStatus.CONFLICT if conflict else HTTPStatus.BAD_REQUEST)


@require_GET
def cart_detail(request: HttpRequest) -> HttpResponse:
    """The cart, served like the grid (`store.views.serve_page`): its page is rendered once
    per cart and kept while neither the cart, nor any of its products, changed and none of
    their reservations ended (`pagecache.cache.pages`); the visitor's token, count and
    account part are spliced in. A flash message means a full render."""
    if not caching():
        return render(request, "cart/detail.html", {"cart": cart_view(cart_for_request(request))})
    shown = visitor(request)
    cart_id = shown.cart_id if shown is not None else None
    built: dict[str, Any] = {}

    def context() -> dict[str, Any]:
        cart = cart_for_request(request)  # the session's own answer, never the memo's
        view = cart_view(cart)
        built.update(
            cart=cart.pk if cart else None, products=[ln.item.product_id for ln in view.lines]
        )
        return {"cart": view, "expires": view.expires}

    def keep(build: Build) -> Any:
        key = ("cart", cart_id)
        found = pages.get(key)
        if found is not None:
            return found
        stamp = changes.stamp  # before reading: a change meanwhile makes it stale
        page, expires = build()
        if built["cart"] == cart_id:  # the memo and the session agree on the cart
            ids = [(CARDS, pk) for pk in built["products"]]
            if cart_id is not None:
                ids.append((CARTS, cart_id))
            until = timezone.now() + timedelta(seconds=MEMO_SECONDS)
            if expires is not None:
                until = min(until, expires)
            pages.put(key, page, stamp=stamp, depends=Depends(ids=tuple(ids)), expires=until)
        return page

    return serve_page(request, "cart/detail.html", context, keep=keep)


@require_POST
def cart_add(request: HtmxHttpRequest) -> HttpResponse:
    form = CartAddForm(request.POST, cart=cart_for_request(request))
    if not form.is_valid():
        return _rejected(request, form)
    services.cart_add(
        cart=services.cart_get_or_create(request),
        product_id=form.cleaned_data["product"],
        quantity=form.cleaned_data["quantity"],
    )
    messages.success(request, f"Added {form.product_obj} to your cart.")
    return _answer(request, HTTPStatus.OK)


@require_POST
def cart_update(request: HtmxHttpRequest) -> HttpResponse:
    form = CartUpdateForm(request.POST, cart=cart_for_request(request))
    if not form.is_valid():
        return _rejected(request, form)
    assert form.cart is not None  # the form checked the line exists, so the cart does
    services.cart_set_quantity(
        cart=form.cart,
        product_id=form.cleaned_data["product"],
        quantity=form.cleaned_data["quantity"],
    )
    messages.success(request, f"Updated {form.product_obj} in your cart.")
    return _answer(request, HTTPStatus.OK)


@require_POST
def cart_remove(request: HtmxHttpRequest) -> HttpResponse:
    form = CartRemoveForm(request.POST)
    if not form.is_valid():
        return _rejected(request, form)
    cart = cart_for_request(request)
    removed = cart is not None and services.cart_remove(
        cart=cart, product_id=form.cleaned_data["product"]
    )
    if not removed:
        messages.error(request, "That product is not in your cart.")
        return _answer(request, HTTPStatus.BAD_REQUEST)
    messages.success(request, "Removed from your cart.")
    return _answer(request, HTTPStatus.OK)
