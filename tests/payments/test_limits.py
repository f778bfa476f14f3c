"""What one shopper may hold and start (payments/limits.py): counted by address, by user and
by browser, serialised per shopper so that a burst cannot beat the count, and the address
read behind trusted proxies only (amazin.http.client_ip)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client, RequestFactory

from amazin.http import client_ip
from payments import checkout
from payments.models import Order
from store.models import Product
from tests.factories import ProductFactory, UserFactory
from tests.support.emulator import wait_until
from tests.support.fake_checkout import FakeCheckout

ADDRESS = "203.0.113.7"


def lines(product: Product, quantity: int) -> list[checkout.LineRequest]:
    return [checkout.LineRequest(product_id=product.pk, quantity=quantity)]


def held(product: Product) -> int:
    return Product.objects.all().with_reserved().get(pk=product.pk).reserved


# By user and by browser, not only by address


@pytest.mark.django_db
def test_a_user_moving_between_addresses_is_still_one_shopper(settings):
    settings.CHECKOUT_MAX_UNITS_PER_ADDRESS = 30
    product = ProductFactory(stock=100)
    user = UserFactory()
    fake = FakeCheckout()

    with fake.patched():
        checkout.checkout_start(user=user, lines=lines(product, 25), client_ip="198.51.100.1")
        with pytest.raises(checkout.CheckoutLimited) as limited:
            checkout.checkout_start(user=user, lines=lines(product, 10), client_ip="198.51.100.2")

    assert "already holds 25 items" in limited.value.message
    assert held(product) == 25


@pytest.mark.django_db
def test_a_browser_starting_checkouts_from_many_addresses_is_still_one_shopper(settings):
    settings.CHECKOUT_STARTS_PER_MINUTE = 3
    products = [ProductFactory(stock=10) for _ in range(4)]
    browser = Client()
    fake = FakeCheckout()
    answers = []

    with fake.patched():
        for i, product in enumerate(products):  # the cart changes: a new checkout each time
            browser.post("/cart/add/", {"product": product.pk, "quantity": 1})
            answers.append(browser.post("/checkout/", REMOTE_ADDR=f"198.51.100.{i + 1}"))

    assert [a.status_code for a in answers] == [HTTPStatus.SEE_OTHER] * 3 + [
        HTTPStatus.TOO_MANY_REQUESTS
    ]


# Behind a proxy


def request_from(remote: str, forwarded: str | None = None) -> Any:
    request = RequestFactory().get("/", REMOTE_ADDR=remote)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return request


@pytest.mark.parametrize(
    ("hops", "remote", "forwarded", "client"),
    [
        (0, "10.0.0.1", "198.51.100.9", "10.0.0.1"),  # no setting: the header is anyone's
        (1, "10.0.0.1", "198.51.100.9", "198.51.100.9"),
        (1, "10.0.0.1", "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # a forged left part
        (2, "10.0.0.2", "6.6.6.6, 198.51.100.9, 10.0.0.1", "198.51.100.9"),
        (2, "10.0.0.2", "198.51.100.9", "10.0.0.2"),  # not through both proxies
        (1, "10.0.0.1", "not-an-address", "10.0.0.1"),
        (1, "10.0.0.1", None, "10.0.0.1"),
        (1, "10.0.0.1", " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_the_client_address_follows_the_trusted_proxies_only(
    settings, hops, remote, forwarded, client
):
    settings.TRUSTED_PROXY_HOPS = hops

    assert client_ip(request_from(remote, forwarded)) == client


@pytest.mark.django_db
def test_behind_a_proxy_one_shoppers_checkouts_do_not_block_everyone(settings):
    settings.CHECKOUT_STARTS_PER_MINUTE = 1
    settings.TRUSTED_PROXY_HOPS = 1
    product = ProductFactory(stock=10)
    fake = FakeCheckout()
    answers = []

    with fake.patched():
        for client_address in ("198.51.100.1", "198.51.100.1", "198.51.100.2"):
            browser = Client()
            browser.post("/cart/add/", {"product": product.pk, "quantity": 1})
            answers.append(
                browser.post(
                    "/checkout/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address
                )
            )

    assert [a.status_code for a in answers] == [
        HTTPStatus.SEE_OTHER,
        HTTPStatus.TOO_MANY_REQUESTS,  # the same shopper again
        HTTPStatus.SEE_OTHER,  # another shopper behind the same proxy
    ]
    assert set(Order.objects.values_list("client_ip", flat=True)) == {
        "198.51.100.1",
        "198.51.100.2",
    }


@pytest.mark.django_db
def test_without_the_setting_a_forwarded_header_does_not_escape_the_limit(settings):
    settings.CHECKOUT_STARTS_PER_MINUTE = 1
    product = ProductFactory(stock=10)
    fake = FakeCheckout()
    answers = []

    with fake.patched():
        for forged in ("198.51.100.1", "198.51.100.2"):
            browser = Client()
            browser.post("/cart/add/", {"product": product.pk, "quantity": 1})
            answers.append(
                browser.post("/checkout/", REMOTE_ADDR=ADDRESS, HTTP_X_FORWARDED_FOR=forged)
            )

    assert [a.status_code for a in answers] == [
        HTTPStatus.SEE_OTHER,
        HTTPStatus.TOO_MANY_REQUESTS,
    ]


# Bursts, on PostgreSQL: every checkout of the burst gets as far as it can before any commits


def waiting_on_locks() -> int:
    """Backends of this database waiting for a lock. In a transaction PostgreSQL keeps one
    snapshot of its statistics views: cleared first, so each call sees the present."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


def burst(count: int, product: Product, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads at once while `product`'s row is locked here: each
    checkout goes as far as it can (past the limits' check, unless that waits for another
    checkout of the same shopper) and queues on the lock; then they all go on together."""
    results: list[Any] = [None] * count

    def target(i: int) -> None:
        try:
            results[i] = work(i)
        except Exception as exc:  # the test inspects what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=product.pk)
        for thread in threads:
            thread.start()
        wait_until(
            lambda: waiting_on_locks() >= count,
            timeout=60,
            message="the burst's checkouts never all queued",
        )
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_from_one_address_never_holds_more_than_its_cap(settings):
    settings.CHECKOUT_MAX_UNITS_PER_ADDRESS = 30
    settings.CHECKOUT_STARTS_PER_MINUTE = 100
    product = ProductFactory(stock=200)
    fake = FakeCheckout()

    with fake.patched():
        results = burst(
            12,
            product,
            lambda i: checkout.checkout_start(
                user=None, lines=lines(product, 5), client_ip=ADDRESS
            ),
        )

    started = [r for r in results if isinstance(r, checkout.CheckoutStarted)]
    limited = [r for r in results if isinstance(r, checkout.CheckoutLimited)]
    assert (len(started), len(limited)) == (6, 6), results
    assert held(product) == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_from_one_address_never_starts_more_than_its_limit(settings):
    settings.CHECKOUT_MAX_UNITS_PER_ADDRESS = 1000
    settings.CHECKOUT_STARTS_PER_MINUTE = 10
    product = ProductFactory(stock=200)
    fake = FakeCheckout()

    with fake.patched():
        results = burst(
            15,
            product,
            lambda i: checkout.checkout_start(
                user=None, lines=lines(product, 1), client_ip=ADDRESS
            ),
        )

    started = [r for r in results if isinstance(r, checkout.CheckoutStarted)]
    assert len(started) == 10, results
    assert Order.objects.filter(client_ip=ADDRESS).count() == 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_checkouts_sharing_a_user_but_not_an_address_queue_without_deadlock(settings):
    """Each takes its address's lock and the user's: in one order, so none waits for ever."""
    settings.CHECKOUT_MAX_UNITS_PER_ADDRESS = 1000
    settings.CHECKOUT_STARTS_PER_MINUTE = 1000
    product = ProductFactory(stock=200)
    user = UserFactory()
    user.save()
    fake = FakeCheckout()

    with fake.patched():
        results = burst(
            8,
            product,
            lambda i: checkout.checkout_start(
                user=user, lines=lines(product, 1), client_ip=f"198.51.100.{i % 3 + 1}"
            ),
        )

    assert all(isinstance(r, checkout.CheckoutStarted) for r in results), results
    assert held(product) == 8
