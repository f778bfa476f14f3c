"""The fault-injecting proxy (tests/support/fault_proxy.py) makes the faults it promises,
seen through the official SDK against the emulator, as the shop would see them."""

from __future__ import annotations

import threading

import pytest
import stripe

from tests.support.emulator import running_emulator, wait_until
from tests.support.fault_proxy import Fault, running_fault_proxy

pytestmark = pytest.mark.emulator

PRODUCTS = r"^/v1/products$"


@pytest.fixture(scope="module")
def emulator():
    with running_emulator() as running:
        yield running


@pytest.fixture
def proxy(emulator):
    with running_fault_proxy(emulator.api_base) as running:
        yield running


def client(proxy, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_emulator", base_addresses={"api": proxy.url}, max_network_retries=retries
    )


def products_named(emulator, name: str) -> int:
    listed = emulator.client().v1.products.list({"limit": 100})
    return sum(1 for product in listed.data if product.name == name)


def test_a_lost_answer_means_stripe_acted_and_the_caller_never_heard(emulator, proxy):
    proxy.add(Fault.LOSE_ANSWER, path=PRODUCTS)

    with pytest.raises(stripe.APIConnectionError):
        client(proxy).v1.products.create({"name": "lost answer"})

    assert products_named(emulator, "lost answer") == 1
    assert proxy.seen(path=PRODUCTS) == 1


def test_the_sdk_retry_after_a_lost_answer_is_answered_by_the_idempotency_key(emulator, proxy):
    proxy.add(Fault.LOSE_ANSWER, path=PRODUCTS)

    product = client(proxy, retries=2).v1.products.create(
        {"name": "retried"}, {"idempotency_key": "fault-proxy-retried"}
    )

    assert product.name == "retried"
    assert products_named(emulator, "retried") == 1
    assert proxy.seen(path=PRODUCTS) == 2


def test_a_cut_connection_never_reaches_stripe(emulator, proxy):
    proxy.add(Fault.CUT, path=PRODUCTS)

    with pytest.raises(stripe.APIConnectionError):
        client(proxy).v1.products.create({"name": "never made"})

    assert products_named(emulator, "never made") == 0


def test_unavailable_answers_503_without_forwarding(emulator, proxy):
    proxy.add(Fault.UNAVAILABLE, path=PRODUCTS, times=None)

    with pytest.raises(stripe.APIError) as raised:
        client(proxy).v1.products.create({"name": "unavailable"})

    assert raised.value.http_status == 503
    assert products_named(emulator, "unavailable") == 0


def test_server_error_is_answered_after_stripe_acted(emulator, proxy):
    proxy.add(Fault.SERVER_ERROR, path=PRODUCTS)

    with pytest.raises(stripe.APIError) as raised:
        client(proxy).v1.products.create({"name": "acted then 500"})

    assert raised.value.http_status == 500
    assert products_named(emulator, "acted then 500") == 1


def test_a_held_request_waits_for_release_and_other_paths_pass(emulator, proxy):
    rule = proxy.add(Fault.HOLD, path=PRODUCTS)
    done = threading.Event()

    def create() -> None:
        client(proxy).v1.products.create({"name": "held"})
        done.set()

    worker = threading.Thread(target=create, daemon=True)
    worker.start()
    wait_until(lambda: proxy.seen(path=PRODUCTS) == 0 and rule.applied == 1, timeout=10)
    listed = client(proxy).v1.prices.list({"limit": 1})  # not held
    assert not done.is_set()

    rule.released.set()
    worker.join(timeout=30)

    assert done.is_set()
    assert listed.object == "list"
    assert products_named(emulator, "held") == 1


def test_rules_apply_only_to_their_count_and_clear_lets_everything_through(emulator, proxy):
    proxy.add(Fault.UNAVAILABLE, path=PRODUCTS, times=1)
    with pytest.raises(stripe.APIError):
        client(proxy).v1.products.create({"name": "first"})
    assert client(proxy).v1.products.create({"name": "second"}).name == "second"
    proxy.add(Fault.UNAVAILABLE, path=PRODUCTS, times=None)
    proxy.clear()

    assert client(proxy).v1.products.create({"name": "third"}).name == "third"
