"""The emulator's dashboard fires the same events as the API."""

from __future__ import annotations

from http import HTTPStatus

import pytest
import requests
import stripe

from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator


def test_create_product_through_the_form(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    form = {
        "name": "Teapot",
        "description": "Cast iron",
        "amount": "24.50",
        "currency": "eur",
        "image": "https://img.test/teapot.png",
    }

    response = requests.post(f"{emulator.api_base}/dashboard/products", data=form, timeout=10)
    [product] = stripe_client.v1.products.list().data
    assert isinstance(product.default_price, str)
    price = stripe_client.v1.prices.retrieve(product.default_price)
    types = [e.type for e in stripe_client.v1.events.list().data]
    page = requests.get(emulator.api_base + "/", timeout=10)

    assert response.history[0].status_code == HTTPStatus.SEE_OTHER
    assert product.name == "Teapot" and product.images == ["https://img.test/teapot.png"]
    assert (price.unit_amount, price.currency) == (2450, "eur")
    assert "product.created" in types and "price.created" in types
    assert "Teapot" in page.text and "€24.50" in page.text


def test_edit_price_replaces_the_default_price(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    product = stripe_client.v1.products.create(
        params={"name": "Kettle", "default_price_data": {"unit_amount": 3000, "currency": "usd"}}
    )
    old_price = product.default_price
    assert isinstance(old_price, str)

    requests.post(
        f"{emulator.api_base}/dashboard/products/{product.id}",
        data={"name": "Kettle", "description": "", "amount": "35", "currency": "usd"},
        timeout=10,
    )
    edited = stripe_client.v1.products.retrieve(product.id)
    assert isinstance(edited.default_price, str)
    new = stripe_client.v1.prices.retrieve(edited.default_price)
    types = [e.type for e in stripe_client.v1.events.list().data]

    assert edited.default_price != old_price
    assert new.unit_amount == 3500
    assert stripe_client.v1.prices.retrieve(old_price).active is False
    assert types[:3] == ["price.updated", "product.updated", "price.created"]


def test_archive_and_unarchive(emulator: Emulator, stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "Cup"})
    toggle = f"{emulator.api_base}/dashboard/products/{product.id}/toggle"

    requests.post(toggle, timeout=10)
    archived = stripe_client.v1.products.retrieve(product.id).active
    requests.post(toggle, timeout=10)

    assert archived is False
    assert stripe_client.v1.products.retrieve(product.id).active is True
