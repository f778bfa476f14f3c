"""Products and prices through the official SDK, including list pagination."""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

import pytest
import stripe

from tests.support.emulator import Emulator

if TYPE_CHECKING:
    from stripe.params import PriceListParams

pytestmark = pytest.mark.emulator


def test_product_crud(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(
        params={"name": "Tea", "description": "Green", "metadata": {"sku": "T1"}}
    )

    updated = stripe_client.v1.products.update(product.id, params={"name": "Green tea"})
    fetched = stripe_client.v1.products.retrieve(product.id)
    deleted = stripe_client.v1.products.delete(product.id)

    assert product.object == "product"
    assert product.id.startswith("prod_")
    assert product.metadata.to_dict() == {"sku": "T1"}
    assert product.livemode is False
    assert updated.name == fetched.name == "Green tea"
    assert deleted.to_dict() == {"id": product.id, "object": "product", "deleted": True}
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.products.retrieve(product.id)


def test_product_with_default_price_data(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(
        params={"name": "Book", "default_price_data": {"unit_amount": 1999, "currency": "eur"}}
    )

    assert isinstance(product.default_price, str)
    price = stripe_client.v1.prices.retrieve(product.default_price)
    expanded = stripe_client.v1.products.retrieve(product.id, params={"expand": ["default_price"]})

    assert price.unit_amount == 1999
    assert price.currency == "eur"
    assert price.type == "one_time"
    assert price.product == product.id
    assert isinstance(expanded.default_price, stripe.Price)
    assert expanded.default_price.id == price.id


def test_update_default_price_and_archive_price(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "Lamp"})
    first = stripe_client.v1.prices.create(
        params={"product": product.id, "unit_amount": 100, "currency": "usd"}
    )
    second = stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 200,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )

    stripe_client.v1.products.update(product.id, params={"default_price": first.id})
    archived = stripe_client.v1.prices.update(
        first.id, params={"active": False, "nickname": "old", "lookup_key": "lamp"}
    )
    active = stripe_client.v1.prices.list(params={"product": product.id, "active": True})

    assert stripe_client.v1.products.retrieve(product.id).default_price == first.id
    assert archived.active is False
    assert archived.lookup_key == "lamp"
    assert second.type == "recurring"
    assert second.recurring is not None
    assert second.recurring.interval == "month"
    assert [p.id for p in active.data] == [second.id]
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.products.delete(product.id)
    assert "prices" in str(excinfo.value.user_message)


def test_missing_and_invalid_parameters(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.prices.create(params={"currency": "usd", "product_data": {"name": "x"}})
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        stripe_client.v1.products.list(params={"limit": 101})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.products.create(params={"name": "x", "colour": "red"})  # type: ignore[typeddict-unknown-key]

    assert missing.value.http_status == 400
    assert missing.value.code == "parameter_missing"
    assert missing.value.param == "unit_amount"
    assert invalid.value.param == "limit"
    assert unknown.value.param == "colour"


def test_pagination_sees_every_product_once_newest_first(
    stripe_client: stripe.StripeClient,
) -> None:
    created = [stripe_client.v1.products.create(params={"name": f"P{i:02d}"}).id for i in range(25)]
    newest_first = list(reversed(created))

    seen = [p.id for p in stripe_client.v1.products.list(params={"limit": 10}).auto_paging_iter()]
    first = stripe_client.v1.products.list(params={"limit": 10})
    second = stripe_client.v1.products.list(
        params={"limit": 10, "starting_after": first.data[-1].id}
    )
    last = stripe_client.v1.products.list(
        params={"limit": 10, "starting_after": second.data[-1].id}
    )
    back = stripe_client.v1.products.list(params={"limit": 10, "ending_before": second.data[0].id})

    assert seen == newest_first
    assert first.has_more and second.has_more and not last.has_more
    assert len(last.data) == 5
    assert first.url == "/v1/products"
    assert [p.id for p in back.data] == newest_first[:10]
    assert back.has_more is False


def test_legacy_global_configuration_auto_paging(emulator: Emulator) -> None:
    saved = (stripe.api_key, stripe.api_base)
    stripe.api_key, stripe.api_base = emulator.api_key, emulator.api_base
    try:
        product = stripe.Product.create(name="Global")
        for amount in (100, 200, 300):
            stripe.Price.create(product=product.id, unit_amount=amount, currency="usd")

        prices = list(stripe.Price.list(product=product.id, limit=2).auto_paging_iter())
    finally:
        stripe.api_key, stripe.api_base = saved

    assert [p.unit_amount for p in prices] == [300, 200, 100]


def test_list_filters_and_expand_data(stripe_client: stripe.StripeClient) -> None:
    kept = stripe_client.v1.products.create(params={"name": "Kept"})
    gone = stripe_client.v1.products.create(params={"name": "Gone"})
    stripe_client.v1.products.update(gone.id, params={"active": False})
    price = stripe_client.v1.prices.create(
        params={"product": kept.id, "unit_amount": 5, "currency": "usd"}
    )

    active = stripe_client.v1.products.list(params={"active": True})
    prices = stripe_client.v1.prices.list(params={"expand": ["data.product"]})

    assert [p.id for p in active.data] == [kept.id]
    assert prices.data[0].id == price.id
    assert isinstance(prices.data[0].product, stripe.Product)
    assert prices.data[0].product.name == "Kept"


def test_price_list_filters_and_a_cursor_outside_the_filter(
    stripe_client: stripe.StripeClient,
) -> None:
    tea = stripe_client.v1.products.create(params={"name": "Tea"})
    cup = stripe_client.v1.products.create(params={"name": "Cup"})
    usd = stripe_client.v1.prices.create(
        params={"product": tea.id, "unit_amount": 5, "currency": "usd", "lookup_key": "tea"}
    )
    eur = stripe_client.v1.prices.create(
        params={"product": tea.id, "unit_amount": 4, "currency": "eur", "active": False}
    )
    other = stripe_client.v1.prices.create(
        params={"product": cup.id, "unit_amount": 9, "currency": "usd"}
    )

    def ids(**params: Unpack[PriceListParams]) -> list[str]:
        return [p.id for p in stripe_client.v1.prices.list(params=params).data]

    assert ids(product=tea.id) == [usd.id]  # active prices only unless `active` is given
    assert ids(product=tea.id, active=False) == [eur.id]
    assert ids(active=False) == [eur.id]
    assert ids(currency="USD") == [other.id, usd.id]
    assert ids(lookup_keys=["tea", "none"]) == [usd.id]
    assert ids(product=tea.id, active=False, limit=1, starting_after=eur.id) == []
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        ids(product=tea.id, starting_after=other.id)
    assert excinfo.value.param == "starting_after"
