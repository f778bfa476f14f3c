"""The hosted page charges the total it showed; a session with nothing to pay needs no card.

And Checkout's limits as Stripe's: at most 5 shipping options, the countries Stripe
refuses, codes of letters, digits and dashes, `ui_mode` `hosted_page`.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import pytest
import requests
import stripe

from tests.support.browser import chromium_page
from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator

ADDRESS = {
    "shipping_name": "Ada Lovelace",
    "shipping_line1": "12 St James's Square",
    "shipping_city": "London",
    "shipping_postal_code": "SW1Y 4JH",
    "shipping_country": "GB",
}


def rate(client: stripe.StripeClient, name: str, amount: int) -> str:
    return client.v1.shipping_rates.create(
        params={
            "display_name": name,
            "type": "fixed_amount",
            "fixed_amount": {"amount": amount, "currency": "usd"},
        }
    ).id


def shipped_session(
    client: stripe.StripeClient, make_price: Any, success_url: str = "https://example.com/ok"
) -> tuple[Any, str, str]:
    standard, express = rate(client, "Standard", 1000), rate(client, "Express", 2000)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": make_price(2550).id, "quantity": 2}],
            "success_url": success_url,
            "shipping_address_collection": {"allowed_countries": ["GB"]},
            "shipping_options": [{"shipping_rate": standard}, {"shipping_rate": express}],
            "allow_promotion_codes": True,
        }
    )
    return session, standard, express


def shown_total(html: str) -> int:
    found = re.search(r"name='shown_total' value='(\d+)'", html)
    assert found, "the form carries the total it shows"
    return int(found.group(1))


def test_without_javascript_another_rate_is_confirmed_before_it_is_charged(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    session, _, express = shipped_session(stripe_client, make_price)
    page = requests.get(f"{emulator.api_base}/pay/{session.id}", timeout=10).text
    form = {
        **ADDRESS,
        "email": "ada@example.com",
        "card": "4242424242424242",
        "expiry": "12/34",
        "cvc": "123",
        "shipping_rate": express,  # picked, no Apply pressed, no script ran
        "shown_total": str(shown_total(page)),
    }

    first = requests.post(f"{emulator.api_base}/pay/{session.id}", data=form, timeout=10)
    unpaid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    confirmed = requests.post(
        f"{emulator.api_base}/pay/{session.id}",
        data={**form, "shown_total": str(shown_total(first.text))},
        allow_redirects=False,
        timeout=10,
    )
    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    intent = stripe_client.v1.payment_intents.retrieve(str(paid.payment_intent))

    assert "Pay $61.00" in page and shown_total(page) == 6100
    assert first.status_code == HTTPStatus.CONFLICT
    assert "The total is now $71.00" in first.text and "Pay $71.00" in first.text
    assert unpaid.status == "open" and unpaid.payment_intent is None
    assert confirmed.status_code == HTTPStatus.SEE_OTHER
    assert paid.amount_total == 7100 and intent.amount_received == 7100


def test_a_code_typed_without_apply_is_confirmed_too(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    session, _, _ = shipped_session(stripe_client, make_price)
    coupon = stripe_client.v1.coupons.create(params={"amount_off": 1000, "currency": "usd"})
    stripe_client.v1.promotion_codes.create(
        params={"code": "TEN-OFF", "promotion": {"type": "coupon", "coupon": coupon.id}}
    )

    answer = emulator.pay(session.id, promotion_code="TEN-OFF", shown_total="6100", **ADDRESS)

    assert answer["paid"] is False and answer["error"]["code"] == "amount_changed"
    assert answer["session"]["amount_total"] == 5100


def test_with_javascript_the_total_follows_the_rate(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    done = f"{emulator.api_base}/healthz"
    session, _, express = shipped_session(stripe_client, make_price, success_url=done)

    with chromium_page() as browser:
        page = browser.page
        page.goto(f"{emulator.api_base}/pay/{session.id}")
        page.check(f"input[value='{express}']")
        big_total = page.inner_text(".total")
        button = page.inner_text("button[data-shows=pay]")
        for name, value in ADDRESS.items():
            if name == "shipping_country":
                page.select_option(f"#{name}", value)
            else:
                page.fill(f"#{name}", value)
        page.fill("#email", "ada@example.com")
        page.fill("#card", "4242424242424242")
        page.fill("#expiry", "12/34")
        page.fill("#cvc", "123")
        page.click("button[data-shows=pay]")
        page.wait_for_url(done)

    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert big_total == "$71.00" and button == "Pay $71.00"
    assert paid.payment_status == "paid" and paid.amount_total == 7100


def test_a_session_free_after_a_code_needs_no_payment(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 100, "duration": "once"})
    stripe_client.v1.promotion_codes.create(
        params={"code": "FREE", "promotion": {"type": "coupon", "coupon": coupon.id}}
    )
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": make_price(1500).id, "quantity": 1}],
            "allow_promotion_codes": True,
        }
    )
    mark = stripe_client.v1.events.list(params={"limit": 1}).data[0].id

    answer = emulator.pay(session.id, card="", promotion_code="FREE")
    done = stripe_client.v1.checkout.sessions.retrieve(session.id)
    types = [e.type for e in stripe_client.v1.events.list(params={"ending_before": mark}).data]

    assert answer["session"]["status"] == "complete"
    assert (done.payment_status, done.amount_total) == ("no_payment_required", 0)
    assert done.payment_intent is None
    assert stripe_client.v1.payment_intents.list().data == []
    assert stripe_client.v1.charges.list().data == []
    assert types == ["checkout.session.completed"]


def test_checkout_limits_as_stripes(stripe_client: stripe.StripeClient, make_price: Any) -> None:
    price = make_price(1000).id
    rates = [rate(stripe_client, f"R{i}", 100 * i) for i in range(6)]
    base: Any = {"mode": "payment", "line_items": [{"price": price, "quantity": 1}]}

    def create(**extra: Any) -> Any:
        params: Any = {**base, **extra}
        return stripe_client.v1.checkout.sessions.create(params=params)

    with pytest.raises(stripe.InvalidRequestError) as six:
        create(shipping_options=[{"shipping_rate": r} for r in rates])
    five = create(shipping_options=[{"shipping_rate": r} for r in rates[:5]])
    with pytest.raises(stripe.InvalidRequestError) as country:
        create(shipping_address_collection={"allowed_countries": ["US", "IR"]})
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 10})
    with pytest.raises(stripe.InvalidRequestError) as underscore:
        stripe_client.v1.promotion_codes.create(
            params={"code": "TEN_OFF", "promotion": {"type": "coupon", "coupon": coupon.id}}
        )

    assert six.value.param == "shipping_options"
    assert len(five.shipping_options) == 5
    assert country.value.param == "shipping_address_collection[allowed_countries][1]"
    assert underscore.value.param == "code"
    assert five.ui_mode == "hosted_page"
