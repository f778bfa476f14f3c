"""A Checkout Session create that Stripe failed, over real HTTP: the emulator replays a
key's first answer for 24 h, 500s included, as Stripe does; the fault proxy loses answers
on the way back. Each retry finds what exists, and no order ever has two payable sessions."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

from payments.models import Order
from store.models import Product
from tests.support.emulator import Emulator, wait_until
from tests.support.fault_proxy import Fault, running_fault_proxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]

CREATE = "/v1/checkout/sessions"


def seed(emulator: Emulator) -> Product:
    stripe = emulator.client()
    product = stripe.v1.products.create(params={"name": "Kettle"})
    price = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": 3000, "currency": "usd"}
    )
    stripe.v1.products.update(product.id, params={"default_price": price.id})
    local = wait_until(
        lambda: Product.objects.visible().filter(stripe_id=product.id).first(),
        timeout=15,
        message="the product's webhooks never reached the shop",
    )
    Product.objects.filter(pk=local.pk).update(stock=5)
    return local


def sessions_of(emulator: Emulator, order: Order) -> list[tuple[str, str]]:
    listed = emulator.client().v1.checkout.sessions.list({"limit": 100})
    return [(s.id, s.status) for s in listed.data if s.client_reference_id == str(order.pk)]


def shopper(product: Product) -> Client:
    browser = Client()
    browser.post("/cart/add/", {"product": product.pk, "quantity": 2})
    return browser


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_create_answered_500_is_found_or_made_again_at_the_next_try(emulated_stripe, when):
    with emulated_stripe() as emulator:
        kettle = seed(emulator)
        browser = shopper(kettle)
        emulator.fail_next(CREATE, when=when)

        failed = browser.post("/checkout/")
        retried = browser.post("/checkout/")

        order = Order.objects.get()
        assert failed.status_code == HTTPStatus.FOUND and failed["Location"] == "/cart/"
        assert retried.status_code == HTTPStatus.SEE_OTHER
        assert sessions_of(emulator, order) == [(order.stripe_session_id, "open")]
        assert retried["Location"].endswith(str(order.stripe_session_id))
        paid = emulator.pay(str(order.stripe_session_id))
        emulator.flush()
        assert paid["paid"] is True
        wait_until(
            lambda: Order.objects.get(pk=order.pk).status == Order.Status.PAID,
            timeout=15,
            message="the session found again was not fulfilled",
        )


def test_answers_lost_on_the_way_back_leave_one_session_found_by_its_key(emulated_stripe, settings):
    with emulated_stripe() as emulator, running_fault_proxy(emulator.api_base) as proxy:
        settings.STRIPE_API_BASE = proxy.url
        kettle = seed(emulator)
        browser = shopper(kettle)
        proxy.add(Fault.LOSE_ANSWER, path=f"^{CREATE}$", times=3)  # the SDK's two retries too

        lost = browser.post("/checkout/")
        retried = browser.post("/checkout/")

        order = Order.objects.get()
        assert lost["Location"] == "/cart/"
        assert order.status == Order.Status.PENDING
        assert retried.status_code == HTTPStatus.SEE_OTHER
        assert sessions_of(emulator, order) == [(order.stripe_session_id, "open")]
        assert proxy.seen(path=f"^{CREATE}$", method="POST") == 4
