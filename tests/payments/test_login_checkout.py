"""Logging in after starting a guest checkout: the guest cart's open Checkout is settled
with Stripe before its lines join the user's cart, so one browser never holds two payable
sessions for the same lines. Over real HTTP, against the emulator (and the fault proxy for
a Stripe that does not answer)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
import requests

from cart.models import Cart, CartItem
from payments.models import Order
from store.models import Product
from tests.factories import UserFactory
from tests.support.emulator import Emulator, wait_until
from tests.support.fault_proxy import Fault, running_fault_proxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]

PASSWORD = "correct horse battery"
SESSIONS = r"^/v1/checkout/sessions"


class Browser:
    """A browser without JavaScript: cookies, CSRF token, forms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.get(url + "/", timeout=10).raise_for_status()

    def post(self, path: str, data: dict[str, Any] | None = None) -> requests.Response:
        token = self.http.cookies["csrftoken"]
        return self.http.post(
            self.url + path,
            data={"csrfmiddlewaretoken": token, **(data or {})},
            allow_redirects=False,
            timeout=60,
        )

    def add(self, product: Product, quantity: int) -> None:
        response = self.post("/cart/add/", {"product": product.pk, "quantity": quantity})
        assert response.status_code == HTTPStatus.FOUND, response.text

    def checkout(self) -> str:
        response = self.post("/checkout/")
        assert response.status_code == HTTPStatus.SEE_OTHER, response.text
        return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    def log_in(self, email: str) -> None:
        self.http.get(self.url + "/accounts/login/", timeout=10)
        response = self.post("/accounts/login/", {"username": email, "password": PASSWORD})
        assert response.status_code == HTTPStatus.FOUND, response.text


def seed(emulator: Emulator, name: str, stock: int) -> Product:
    stripe = emulator.client()
    product = stripe.v1.products.create(params={"name": name})
    price = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": 2500, "currency": "usd"}
    )
    stripe.v1.products.update(product.id, params={"default_price": price.id})
    local = wait_until(
        lambda: Product.objects.visible().filter(stripe_id=product.id).first(),
        timeout=15,
        message="the product's webhooks never reached the shop",
    )
    Product.objects.filter(pk=local.pk).update(stock=stock)
    return local


def status_at_stripe(emulator: Emulator, session_id: str) -> str:
    return str(emulator.client().v1.checkout.sessions.retrieve(session_id).status)


def member(*, with_cart_of: Product | None = None) -> Any:
    user = UserFactory.create(username="kim@example.com", email="kim@example.com")
    user.set_password(PASSWORD)
    user.save()
    if with_cart_of is not None:  # shopped in another browser before
        CartItem.objects.create(
            cart=Cart.objects.create(user=user), product=with_cart_of, quantity=1
        )
    return user


@pytest.mark.parametrize("user_has_a_cart", [False, True], ids=["no-cart", "own-cart"])
def test_logging_in_expires_the_guest_checkout_so_only_the_next_one_can_be_paid(
    live_server, emulated_stripe, user_has_a_cart
):
    with emulated_stripe() as emulator:
        kettle, mug = seed(emulator, "Kettle", 5), seed(emulator, "Mug", 5)
        user = member(with_cart_of=mug if user_has_a_cart else None)
        browser = Browser(live_server.url)
        browser.add(kettle, 2)
        first = browser.checkout()

        browser.log_in("kim@example.com")

        assert status_at_stripe(emulator, first) == "expired"
        second = browser.checkout()
        refused = emulator.pay(first)
        paid = emulator.pay(second)
        emulator.flush()
        order = wait_until(
            lambda: Order.objects.filter(status=Order.Status.PAID).first(),
            timeout=15,
            message="the second checkout was never paid",
        )
        assert second != first
        assert refused["paid"] is False and paid["paid"] is True
        assert order.stripe_session_id == second and order.user_id == user.pk
        assert Order.objects.get(stripe_session_id=first).status == Order.Status.EXPIRED
        bought = dict(order.lines.values_list("product_id", "quantity"))
        assert bought == ({kettle.pk: 2, mug.pk: 1} if user_has_a_cart else {kettle.pk: 2})


@pytest.mark.parametrize("user_has_a_cart", [False, True], ids=["no-cart", "own-cart"])
def test_a_guest_checkout_stripe_cannot_settle_at_login_moves_with_the_lines(
    live_server, emulated_stripe, settings, user_has_a_cart
):
    """The order goes to the user and their cart: the user sees it, and the cart's next
    checkout finds it (the same session for the same lines; other lines: it is expired
    before another opens). Never two payable sessions."""
    with emulated_stripe() as emulator, running_fault_proxy(emulator.api_base) as proxy:
        settings.STRIPE_API_BASE = proxy.url
        kettle, mug = seed(emulator, "Kettle", 5), seed(emulator, "Mug", 5)
        user = member(with_cart_of=mug if user_has_a_cart else None)
        browser = Browser(live_server.url)
        browser.add(kettle, 2)
        first = browser.checkout()
        proxy.add(Fault.UNAVAILABLE, path=SESSIONS, method=None, times=None)

        browser.log_in("kim@example.com")

        moved = Order.objects.get(stripe_session_id=first)
        assert moved.status == Order.Status.PENDING
        assert moved.user_id == user.pk
        assert moved.cart_id == Cart.objects.get(user=user).pk
        assert status_at_stripe(emulator, first) == "open"
        page = browser.http.get(live_server.url + f"/orders/{moved.pk}/", timeout=10)
        assert page.status_code == HTTPStatus.OK

        proxy.clear()
        second = browser.checkout()

        payable = [s for s in {first, second} if status_at_stripe(emulator, s) == "open"]
        assert payable == [second]
        assert (second == first) is not user_has_a_cart
