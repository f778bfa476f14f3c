"""Races that matter for money and stock, on PostgreSQL (real row locks, real threads).

Stripe is patched at payments/stripe_api.py (the patch is process-wide, so every thread sees
it); each thread has its own database connection, closed when it is done.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from payments import checkout, fulfilment
from payments.models import Order
from store.models import Product
from tests.factories import ProductFactory
from tests.support import stripe_events as se
from tests.support.fake_checkout import FakeCheckout
from tests.support.orders import paid_session, pending_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Stripe's answer to a refund it made at once (a refund is money back only once it says so).
REFUNDED = {"id": "re_1", "object": "refund", "status": "succeeded"}


def run_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Start `count` threads that call `work(i)` together; return results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # the test inspects what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return results


def fake_session(**kwargs: Any) -> dict[str, str]:
    return {
        "id": f"cs_test_race{kwargs['order_id']}",
        "url": "https://checkout.example/",
        "status": "open",
    }


def reserved(product: Product) -> int:
    # .all(): django-stubs drops the annotations on the manager-copied method
    return Product.objects.all().with_reserved().get(pk=product.pk).reserved


def test_twenty_shoppers_race_for_the_last_five_units():
    product = ProductFactory(name="Last Teapots", stock=5)
    line = [checkout.LineRequest(product_id=product.pk, quantity=1)]
    started = time.monotonic()

    with mock.patch("payments.stripe_api.checkout_session_create", side_effect=fake_session):
        results = run_at_once(20, lambda i: checkout.checkout_start(user=None, lines=line))

    elapsed = time.monotonic() - started
    won = [r for r in results if isinstance(r, checkout.CheckoutStarted)]
    refused = [r for r in results if isinstance(r, checkout.CheckoutError)]
    assert len(won) == 5, results
    assert len(refused) == 15, results
    assert {r.message for r in refused} == {"Sorry, Last Teapots is sold out."}
    assert reserved(product) == 5
    assert Product.objects.get(pk=product.pk).stock == 5
    assert Order.objects.filter(status=Order.Status.PENDING).count() == 5
    assert not Order.objects.exclude(status=Order.Status.PENDING).exists()
    print(f"\n20 checkouts for 5 units: 5 reserved, 15 refused in {elapsed:.2f}s")


def test_racing_checkouts_wanting_several_units_never_over_reserve():
    product = ProductFactory(name="Kettle", stock=7)

    def attempt(i: int) -> Any:
        quantity = 1 + i % 3
        lines = [checkout.LineRequest(product_id=product.pk, quantity=quantity)]
        return checkout.checkout_start(user=None, lines=lines)

    with mock.patch("payments.stripe_api.checkout_session_create", side_effect=fake_session):
        results = run_at_once(20, attempt)

    won = [r for r in results if isinstance(r, checkout.CheckoutStarted)]
    assert all(isinstance(r, checkout.CheckoutStarted | checkout.CheckoutError) for r in results)
    held = sum(line.quantity for r in won for line in r.order.lines.all())
    assert held == reserved(product)
    assert 5 <= held <= 7  # greedy winners fill it; nothing beyond the stock
    assert Product.objects.get(pk=product.pk).stock == 7


def test_opposite_cart_orders_do_not_deadlock():
    a, b = ProductFactory(stock=100), ProductFactory(stock=100)

    def attempt(i: int) -> Any:
        pair = (a, b) if i % 2 else (b, a)
        lines = [checkout.LineRequest(product_id=p.pk, quantity=1) for p in pair]
        return checkout.checkout_start(user=None, lines=lines)

    with mock.patch("payments.stripe_api.checkout_session_create", side_effect=fake_session):
        results = run_at_once(16, attempt)

    assert all(isinstance(r, checkout.CheckoutStarted) for r in results), results
    assert (reserved(a), reserved(b)) == (16, 16)


def paid_order(product: Product, quantity: int) -> tuple[Order, dict[str, Any]]:
    order = pending_order((product, quantity), email="buyer@example.com")
    return order, paid_session(order)


def post_webhook(session: dict[str, Any]) -> int:
    body = json.dumps(se.event("checkout.session.completed", session)).encode()
    response = Client().post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": se.sign(body)},
    )
    return response.status_code


def test_ten_fulfilments_and_the_webhook_at_once_fulfil_once():
    product = ProductFactory(stock=5)
    order, session = paid_order(product, 2)
    started = time.monotonic()

    def call(i: int) -> Any:
        if i == 10:
            return post_webhook(session)
        return fulfilment.fulfil_checkout_session(session_id=session["id"])

    with mock.patch("payments.stripe_api.checkout_session_retrieve", return_value=session):
        results = run_at_once(11, call)

    elapsed = time.monotonic() - started
    assert results[10] == HTTPStatus.OK
    assert all(isinstance(r, Order) and r.status == Order.Status.PAID for r in results[:10])
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Product.objects.get(pk=product.pk).stock == 3
    assert len(mail.outbox) == 1
    print(f"\n10 fulfilments + webhook for one session: one decrement, one email in {elapsed:.2f}s")


def test_racing_fulfilments_of_an_unfillable_order_refund_once():
    product = ProductFactory(stock=2)
    order, session = paid_order(product, 2)
    Product.objects.filter(pk=product.pk).update(stock=1)

    with (
        mock.patch("payments.stripe_api.checkout_session_retrieve", return_value=session),
        mock.patch("payments.stripe_api.refund_create", return_value=REFUNDED) as refund,
    ):
        results = run_at_once(
            10, lambda i: fulfilment.fulfil_checkout_session(session_id=session["id"])
        )

    assert all(isinstance(r, Order) for r in results), results
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert refund.call_count == 1
    assert Product.objects.get(pk=product.pk).stock == 1
    assert len(mail.outbox) == 1


def test_two_orders_for_the_last_unit_fulfilled_at_once_one_is_refunded():
    product = ProductFactory(stock=1)
    first, first_session = paid_order(product, 1)
    second, second_session = paid_order(product, 1)
    sessions = {s["id"]: s for s in (first_session, second_session)}

    with (
        mock.patch("payments.stripe_api.checkout_session_retrieve", side_effect=sessions.get),
        mock.patch("payments.stripe_api.refund_create", return_value=REFUNDED),
    ):
        run_at_once(
            10,
            lambda i: fulfilment.fulfil_checkout_session(
                session_id=(first_session, second_session)[i % 2]["id"]
            ),
        )

    statuses = sorted(Order.objects.values_list("status", flat=True))
    assert statuses == [Order.Status.PAID, Order.Status.REFUNDED]
    assert Product.objects.get(pk=product.pk).stock == 0


def test_fifty_checkouts_of_one_cart_at_once_open_one_session():
    product = ProductFactory(stock=10)
    browser = Client()
    browser.post("/cart/add/", {"product": product.pk, "quantity": 2})
    cookies = browser.cookies
    fake = FakeCheckout()

    def submit(i: int) -> str:
        tab = Client()
        tab.cookies = cookies
        return tab.post("/checkout/")["Location"]

    with fake.patched():
        locations = run_at_once(50, submit)

    assert len(set(locations)) == 1, locations
    assert Order.objects.count() == 1
    assert fake.created == 1
    assert reserved(product) == 2


def test_a_transfer_leaving_the_cart_while_the_same_browser_checks_out_again():
    """Checkout completes with a bank transfer (the webhook and the success page at once)
    while the browser, its cart changed, submits checkout from several tabs: the first order
    is left processing with its hold, and one new checkout opens for what is in the cart now,
    never for the lines just bought."""
    kettle, mug = ProductFactory(stock=10), ProductFactory(stock=10)
    browser = Client()
    browser.post("/cart/add/", {"product": kettle.pk, "quantity": 2})
    fake = FakeCheckout()
    with fake.patched():
        browser.post("/checkout/")
    first = Order.objects.get()
    fake.sessions[first.stripe_session_id].update(
        paid_session(first, payment_status="unpaid", status="complete")
        | {"payment_intent": {"id": "pi_race", "object": "payment_intent", "status": "processing"}}
    )
    browser.post("/cart/add/", {"product": mug.pk, "quantity": 1})
    cookies = browser.cookies

    def call(i: int) -> Any:
        if i < 4:
            return fulfilment.fulfil_checkout_session(session_id=first.stripe_session_id)
        tab = Client()
        tab.cookies = cookies
        return tab.post("/checkout/")["Location"]

    with fake.patched():
        results = run_at_once(12, call)

    assert all(isinstance(r, Order) for r in results[:4]), results
    assert len(set(results[4:])) == 1, results
    second = Order.objects.exclude(pk=first.pk).get()
    assert results[4] == f"https://checkout.example/{second.pk}"
    assert Order.objects.get(pk=first.pk).status == Order.Status.PROCESSING
    assert list(second.lines.values_list("product_id", "quantity")) == [(mug.pk, 1)]
    assert (reserved(kettle), reserved(mug)) == (2, 1)
    assert fake.created == 2
