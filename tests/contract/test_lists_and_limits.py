"""List defaults and pagination; Checkout's limits."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from tests.support.contract import Target


def test_prices_list_active_ones_unless_asked(target: Target) -> None:
    kept = target.price(1000)
    product = str(kept.product)
    archived = target.made_one(
        "price",
        target.client.v1.prices.create(
            {"product": product, "unit_amount": 900, "currency": "usd", "metadata": target.tag}
        ),
    )
    target.client.v1.prices.update(archived.id, {"active": False})

    default = target.client.v1.prices.list({"product": product}).data
    inactive = target.client.v1.prices.list({"product": product, "active": False}).data
    active = target.client.v1.prices.list({"product": product, "active": True}).data

    assert [p.id for p in default] == [kept.id]
    assert [p.id for p in inactive] == [archived.id]
    assert [p.id for p in active] == [kept.id]


def test_pagination_newest_first_with_a_cursor(target: Target) -> None:
    made = [
        target.made_one(
            "product",
            target.client.v1.products.create({"name": f"Page {i}", "metadata": target.tag}),
        )
        for i in range(3)
    ]
    ids = [p.id for p in made]

    first = target.client.v1.products.list({"ids": ids, "limit": 2})
    rest = target.client.v1.products.list(
        {"ids": ids, "limit": 2, "starting_after": first.data[-1].id}
    )

    assert first.has_more is True and len(first.data) == 2
    assert rest.has_more is False
    assert sorted(p.id for p in [*first.data, *rest.data]) == sorted(ids)


def refused(target: Target, **extra: Any) -> stripe.InvalidRequestError:
    params: Any = {
        "mode": "payment",
        "line_items": [{"price": target.price().id, "quantity": 1}],
        "success_url": "https://example.com/ok",
        **extra,
    }
    with pytest.raises(stripe.InvalidRequestError) as error:
        target.made_one("session", target.client.v1.checkout.sessions.create(params))
    assert error.value.http_status == 400
    return error.value


def test_at_most_five_shipping_options(target: Target) -> None:
    rates = [
        target.made_one(
            "shipping_rate",
            target.client.v1.shipping_rates.create(
                {
                    "display_name": f"Rate {i}",
                    "type": "fixed_amount",
                    "fixed_amount": {"amount": 100 * i, "currency": "usd"},
                }
            ),
        )
        for i in range(6)
    ]

    error = refused(target, shipping_options=[{"shipping_rate": r.id} for r in rates])
    five = target.session(shipping_options=[{"shipping_rate": r.id} for r in rates[:5]])

    assert error.param == "shipping_options"
    assert len(five.shipping_options) == 5


@pytest.mark.parametrize("country", ["AS", "CU", "IR", "KP", "SY", "VI"])
def test_countries_stripe_refuses_to_ship_to(target: Target, country: str) -> None:
    error = refused(target, shipping_address_collection={"allowed_countries": ["US", country]})

    assert error.param == "shipping_address_collection[allowed_countries][1]"


def test_at_most_100_line_items(target: Target) -> None:
    price = target.price().id

    error = refused(target, line_items=[{"price": price, "quantity": 1}] * 101)

    assert error.param == "line_items"


@pytest.mark.parametrize(("ahead", "why"), [(25 * 60, "too soon"), (25 * 3600, "too late")])
def test_expires_at_between_30_minutes_and_24_hours(target: Target, ahead: int, why: str) -> None:
    error = refused(target, expires_at=int(time.time()) + ahead)

    assert error.param == "expires_at", why


def test_promotion_codes_are_letters_digits_and_dashes(target: Target) -> None:
    coupon = target.made_one(
        "coupon", target.client.v1.coupons.create({"percent_off": 10, "duration": "once"})
    )

    with pytest.raises(stripe.InvalidRequestError) as underscore:
        target.client.v1.promotion_codes.create(
            {"code": "TEN_OFF", "promotion": {"type": "coupon", "coupon": coupon.id}}
        )
    dashed = target.made_one(
        "promotion_code",
        target.client.v1.promotion_codes.create(
            {
                "code": f"TEN-{target.run_id.upper()}",
                "promotion": {"type": "coupon", "coupon": coupon.id},
            }
        ),
    )

    assert underscore.value.param == "code"
    assert dashed.code == f"TEN-{target.run_id.upper()}"


def test_a_checkout_session_is_a_hosted_page(target: Target) -> None:
    session = target.session()

    assert session.ui_mode == "hosted_page"
    assert session.url and session.status == "open" and session.payment_status == "unpaid"
