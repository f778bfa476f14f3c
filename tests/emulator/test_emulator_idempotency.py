"""Idempotency keys as Stripe keeps them: errors replayed, 409 while running, faults.

The emulator's own tests; tests/contract/ checks the same at the SDK level against
any API base (real Stripe too).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import stripe

from tests.support.emulator import Emulator, wait_until

pytestmark = pytest.mark.emulator


def post(emulator: Emulator, path: str, data: dict[str, str], key: str) -> requests.Response:
    return requests.post(
        f"{emulator.api_base}{path}",
        data=data,
        headers={"Authorization": f"Bearer {emulator.api_key}", "Idempotency-Key": key},
        timeout=30,
    )


def test_an_error_from_the_endpoint_is_stored_and_replayed(emulator: Emulator) -> None:
    price = {"unit_amount": "500", "currency": "usd", "product": "prod_missing"}

    first = post(emulator, "/v1/prices", price, "price-1")
    product = post(emulator, "/v1/products", {"name": "Jug", "id": "prod_missing"}, "p-1")
    again = post(emulator, "/v1/prices", price, "price-1")
    fresh = post(emulator, "/v1/prices", price, "price-2")

    assert product.status_code == 200
    assert first.status_code == again.status_code == 404  # Stripe: No such product
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert fresh.status_code == 200  # a new key runs again, and now the product exists


def test_a_request_that_fails_validation_stores_nothing(emulator: Emulator) -> None:
    bad = post(emulator, "/v1/products", {"name": "Jug", "colour": "red"}, "k")
    good = post(emulator, "/v1/products", {"name": "Jug"}, "k")

    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "parameter_unknown"
    assert good.status_code == 200
    assert "Idempotent-Replayed" not in good.headers


def test_a_500_after_the_work_is_replayed_and_the_work_is_done(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    emulator.fail_next("/v1/products", when="after")

    first = post(emulator, "/v1/products", {"name": "Jug"}, "k-500")
    again = post(emulator, "/v1/products", {"name": "Jug"}, "k-500")
    products = stripe_client.v1.products.list().data

    assert first.status_code == again.status_code == 500
    assert first.json()["error"]["type"] == "api_error"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [p.name for p in products] == ["Jug"]  # made once, though the answer was a 500


def test_a_500_before_the_work_does_nothing(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    emulator.fail_next("/v1/products", when="before", count=2)

    answers = [post(emulator, "/v1/products", {"name": "Jug"}, f"k-{i}") for i in range(3)]

    assert [a.status_code for a in answers] == [500, 500, 200]
    assert [p.name for p in stripe_client.v1.products.list().data] == ["Jug"]


def test_a_fault_matches_a_route_template(emulator: Emulator) -> None:
    product = post(emulator, "/v1/products", {"name": "Jug"}, "p").json()
    emulator.fail_next("/v1/products/{id}", when="before")

    failed = post(emulator, f"/v1/products/{product['id']}", {"name": "Mug"}, "u-1")
    worked = post(emulator, f"/v1/products/{product['id']}", {"name": "Mug"}, "u-2")

    assert (failed.status_code, worked.status_code) == (500, 200)


def test_the_sdk_raises_api_error_for_a_stored_500(emulator: Emulator) -> None:
    client = stripe.StripeClient(
        emulator.api_key, base_addresses={"api": emulator.api_base}, max_network_retries=2
    )
    emulator.fail_next("/v1/products", when="after")
    options: Any = {"idempotency_key": "sdk-500"}

    with pytest.raises(stripe.APIError) as excinfo:
        client.v1.products.create(params={"name": "Jug"}, options=options)

    # The SDK retried with the same key and got the stored 500 back each time.
    assert excinfo.value.http_status == 500
    assert len(client.v1.products.list().data) == 1


def start_slow_request(emulator: Emulator, key: str, seconds: float) -> Any:
    """A request with `key` that is still running when this returns; join the thread."""
    emulator.delay_next("/v1/products", seconds)
    answers: list[requests.Response] = []
    thread = threading.Thread(
        target=lambda: answers.append(post(emulator, "/v1/products", {"name": "Jug"}, key))
    )
    thread.start()

    def taken() -> bool:  # the delay fault is used up: the first request is in the endpoint
        return not emulator.request("GET", "/_emulator/faults")[1]["data"]

    wait_until(taken, timeout=20)
    return thread, answers


def test_a_concurrent_request_with_the_same_key_is_a_409(emulator: Emulator) -> None:
    thread, answers = start_slow_request(emulator, "race", 5.0)

    second = post(emulator, "/v1/products", {"name": "Jug"}, "race")
    thread.join(timeout=30)
    third = post(emulator, "/v1/products", {"name": "Jug"}, "race")

    assert second.status_code == 409
    assert second.json()["error"]["type"] == "idempotency_error"
    assert answers[0].status_code == 200
    assert third.headers["Idempotent-Replayed"] == "true"  # the 409 stored nothing
    assert third.json()["id"] == answers[0].json()["id"]


def test_the_sdk_raises_api_error_after_retrying_a_409(emulator: Emulator) -> None:
    client = stripe.StripeClient(
        emulator.api_key, base_addresses={"api": emulator.api_base}, max_network_retries=1
    )
    # Long enough for the SDK's one retry (at most 1 s later) to find the first still running.
    thread, _ = start_slow_request(emulator, "race", 10.0)
    options: Any = {"idempotency_key": "race"}

    with pytest.raises(stripe.APIError) as excinfo:
        client.v1.products.create(params={"name": "Jug"}, options=options)
    thread.join(timeout=30)

    assert excinfo.value.http_status == 409
    assert not isinstance(excinfo.value, stripe.IdempotencyError)


def test_faults_survive_a_restart(emulator: Emulator) -> None:
    emulator.fail_next("/v1/products", when="before")

    emulator.restart()
    answer = post(emulator, "/v1/products", {"name": "Jug"}, "after-restart")

    assert answer.status_code == 500
