"""Idempotency keys: the first answer is kept, a success or an error, and replayed."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import stripe

from tests.support.contract import Target


def key() -> Any:
    return {"idempotency_key": f"contract-{uuid.uuid4()}"}


def test_a_success_is_replayed(target: Target) -> None:
    options = key()
    params: Any = {"name": "Replayed", "metadata": target.tag}

    first = target.made_one("product", target.client.v1.products.create(params, options))
    again = target.client.v1.products.create(params, options)

    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response is not None
    assert first.last_response.headers.get("Idempotent-Replayed") is None


def test_an_error_is_replayed_and_a_new_key_runs_again(target: Target) -> None:
    options = key()
    missing = f"prod_contract{uuid.uuid4().hex[:12]}"
    params: Any = {"product": missing, "unit_amount": 500, "currency": "usd"}

    with pytest.raises(stripe.InvalidRequestError) as first:
        target.client.v1.prices.create(params, options)
    target.made_one(
        "product",
        target.client.v1.products.create({"id": missing, "name": "Late", "metadata": target.tag}),
    )
    with pytest.raises(stripe.InvalidRequestError) as again:
        target.client.v1.prices.create(params, options)
    fresh = target.made_one("price", target.client.v1.prices.create(params, key()))

    assert first.value.http_status == again.value.http_status == 404
    assert again.value.code == first.value.code == "resource_missing"
    assert again.value.headers is not None
    assert again.value.headers.get("Idempotent-Replayed") == "true"
    assert fresh.product == missing


def test_the_same_key_with_other_parameters_is_an_idempotency_error(target: Target) -> None:
    options = key()
    target.made_one(
        "product",
        target.client.v1.products.create({"name": "One", "metadata": target.tag}, options),
    )

    with pytest.raises(stripe.IdempotencyError) as other:
        target.client.v1.products.create({"name": "Two", "metadata": target.tag}, options)

    assert other.value.http_status == 400


def test_a_500_after_the_work_is_replayed(target: Target) -> None:
    emulator = target.emulator_only("Stripe cannot be asked for a 500")
    emulator.fail_next("/v1/products", when="after")
    options = key()

    with pytest.raises(stripe.APIError) as failed:
        target.client.v1.products.create({"name": "Made", "metadata": target.tag}, options)
    with pytest.raises(stripe.APIError):
        target.client.v1.products.create({"name": "Made", "metadata": target.tag}, options)
    made = target.client.v1.products.list({"limit": 10}).data

    assert failed.value.http_status == 500
    assert [p.name for p in made] == ["Made"]  # the work was done once


def test_a_request_racing_the_same_key_gets_a_409(target: Target) -> None:
    emulator = target.emulator_only("a request in flight at Stripe cannot be held open")
    emulator.delay_next("/v1/products", 8.0)
    options = key()
    slow = threading.Thread(
        target=lambda: target.client.v1.products.create({"name": "Slow"}, options)
    )
    slow.start()
    target.wait_for(
        lambda: not emulator.request("GET", "/_emulator/faults")[1]["data"], what="in flight"
    )

    with pytest.raises(stripe.APIError) as conflict:
        target.client.v1.products.create({"name": "Slow"}, options)
    slow.join(timeout=30)

    assert conflict.value.http_status == 409
    assert not isinstance(conflict.value, stripe.IdempotencyError)
