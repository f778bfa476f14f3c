"""Shipping rates, coupons and promotion codes, and a Checkout Session that uses them."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import pytest
import requests
import stripe

if TYPE_CHECKING:
    from stripe.params import CouponCreateParams

pytestmark = pytest.mark.emulator

ADDRESS = {
    "shipping_name": "Ada Lovelace",
    "shipping_line1": "12 St James's Square",
    "shipping_city": "London",
    "shipping_postal_code": "SW1Y 4JH",
    "shipping_country": "GB",
}
with open("tests/fixtures/stripe/fixtures3.json") as fixtures:
    FIXTURES = json.load(fixtures)["resources"]


def rate(client: stripe.StripeClient, name: str, amount: int) -> stripe.ShippingRate:
    return client.v1.shipping_rates.create(
        params={
            "display_name": name,
            "type": "fixed_amount",
            "fixed_amount": {"amount": amount, "currency": "usd"},
            "metadata": {"amazin_key": name.lower()},
        }
    )


def promo(client: stripe.StripeClient, code: str, **coupon: Any) -> stripe.PromotionCode:
    params: dict[str, Any] = {"duration": "once", **coupon}
    made = client.v1.coupons.create(params=cast("CouponCreateParams", params))
    return client.v1.promotion_codes.create(
        params={"code": code, "promotion": {"type": "coupon", "coupon": made.id}}
    )


def session_with_everything(
    client: stripe.StripeClient, make_price: Any, rates: list[str]
) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": make_price(2000).id, "quantity": 2}],
            "shipping_address_collection": {"allowed_countries": ["GB", "FR"]},
            "shipping_options": [{"shipping_rate": r} for r in rates],
            "allow_promotion_codes": True,
            "success_url": "http://shop.test/ok?session_id={CHECKOUT_SESSION_ID}",
        }
    )


def test_objects_have_every_field_of_stripes_samples(stripe_client, make_price):
    shipping = rate(stripe_client, "Ground", 500)
    code = promo(stripe_client, "SPRING", percent_off=10)
    coupon = stripe_client.v1.coupons.retrieve(code.promotion.coupon)

    for obj, name in ((shipping, "shipping_rate"), (code, "promotion_code"), (coupon, "coupon")):
        assert set(obj.to_dict()) == set(FIXTURES[name]), name


def test_shipping_rates_are_listed_and_retrieved(stripe_client):
    ground = rate(stripe_client, "Ground", 500)
    express = rate(stripe_client, "Express", 1500)

    listed = stripe_client.v1.shipping_rates.list(params={"active": True})
    again = stripe_client.v1.shipping_rates.retrieve(ground.id)

    assert [r.id for r in listed.data] == [express.id, ground.id]
    assert again.fixed_amount.amount == 500 and again.metadata["amazin_key"] == "ground"


def test_a_session_charges_the_chosen_rate_less_the_code(emulator, stripe_client, make_price):
    ground = rate(stripe_client, "Ground", 500)
    express = rate(stripe_client, "Express", 1500)
    promo(stripe_client, "WELCOME10", percent_off=10)
    session = session_with_everything(stripe_client, make_price, [ground.id, express.id])

    paid = emulator.pay(session.id, shipping_rate=express.id, promotion_code="welcome10", **ADDRESS)
    after = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent", "line_items"]}
    )

    assert session.amount_total == 4500  # the first rate is chosen until another is
    assert session.shipping_cost.shipping_rate == ground.id
    assert paid["paid"] is True
    assert after.amount_subtotal == 4000
    assert after.total_details.to_dict() == {
        "amount_discount": 400,
        "amount_shipping": 1500,
        "amount_tax": 0,
    }
    assert after.amount_total == 4000 - 400 + 1500
    assert after.payment_intent.amount == after.amount_total
    assert after.shipping_cost.shipping_rate == express.id
    details = after.collected_information.shipping_details
    assert details.name == "Ada Lovelace" and details.address.country == "GB"
    assert after.discounts[0].promotion_code.startswith("promo_")
    assert after.line_items.data[0].amount_discount == 400
    code = stripe_client.v1.promotion_codes.list(params={"code": "WELCOME10"}).data[0]
    assert code.times_redeemed == 1


def test_amount_off_coupons_and_refused_inputs(emulator, stripe_client, make_price):
    ground = rate(stripe_client, "Ground", 500)
    promo(stripe_client, "FIVE", amount_off=500, currency="usd")
    off = promo(stripe_client, "OFF", percent_off=50)
    stripe_client.v1.promotion_codes.update(off.id, params={"active": False})
    session = session_with_everything(stripe_client, make_price, [ground.id])

    bad_code = emulator.pay(session.id, promotion_code="OFF", **ADDRESS)
    no_address = emulator.pay(session.id, promotion_code="FIVE")
    abroad = emulator.pay(session.id, **{**ADDRESS, "shipping_country": "US"})
    paid = emulator.pay(session.id, promotion_code="FIVE", **ADDRESS)

    assert bad_code["paid"] is False and bad_code["error"]["code"] == "promotion_code_invalid"
    assert no_address["error"]["code"] == "shipping_address_invalid"
    assert abroad["error"]["code"] == "shipping_address_invalid"
    assert paid["session"]["amount_total"] == 4000 - 500 + 500
    assert paid["session"]["total_details"]["amount_discount"] == 500


def test_session_refuses_a_rate_that_does_not_exist(stripe_client, make_price):
    with pytest.raises(stripe.InvalidRequestError) as error:
        session_with_everything(stripe_client, make_price, ["shr_missing"])

    assert error.value.param == "shipping_options[0][shipping_rate]"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def _post(url: str, data: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode())
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_hosted_page_applies_a_code_and_takes_an_address(emulator, stripe_client, make_price):
    ground = rate(stripe_client, "Ground", 500)
    promo(stripe_client, "WELCOME10", percent_off=10)
    session = session_with_everything(stripe_client, make_price, [ground.id])
    page = urllib.request.urlopen(session.url, timeout=10).read().decode()

    status, applied = _post(session.url, {"action": "apply", "promotion_code": "WELCOME10"})
    applied_session = stripe_client.v1.checkout.sessions.retrieve(session.id)
    status_paid, _ = _post(
        session.url,
        {"email": "a@example.com", "card": "4242424242424242", "expiry": "12/34", "cvc": "123"}
        | {**ADDRESS, "promotion_code": "WELCOME10", "shipping_rate": ground.id},
    )
    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)

    assert "Shipping address" in page and "Promotion code" in page and "Ground" in page
    assert "<option value='GB' selected>United Kingdom</option>" in page
    assert status == HTTPStatus.OK
    assert re.search(r"Discount WELCOME10</span><span>-\$4\.00", applied)
    assert applied_session.total_details.amount_discount == 400
    assert status_paid == HTTPStatus.SEE_OTHER  # to success_url
    assert paid.status == "complete" and paid.amount_total == 4000 - 400 + 500


def test_dashboard_creates_a_promotion_code(emulator, stripe_client):
    form = {"code": "SUMMER", "percent_off": "15"}

    response = requests.post(
        f"{emulator.api_base}/dashboard/promotion_codes", data=form, timeout=10
    )

    assert response.status_code == HTTPStatus.OK  # followed the redirect to the dashboard
    assert "Created promotion code SUMMER" in response.text
    assert "<strong>SUMMER</strong>" in response.text and "15% off" in response.text
    code = stripe_client.v1.promotion_codes.list(params={"code": "summer"}).data[0]
    coupon = stripe_client.v1.coupons.retrieve(code.promotion.coupon)
    assert (coupon.percent_off, coupon.duration, code.active) == (15, "once", True)
