"""Checkout Sessions: create, pay on the hosted page, decline, expire."""

from __future__ import annotations

import re
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import pytest
import requests
import stripe

from tests.emulator.conftest import SECRET, Receiver
from tests.support.emulator import Emulator, wait_until

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams

pytestmark = pytest.mark.emulator

SUCCESS = "http://shop.test/checkout/success/?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "http://shop.test/checkout/cancel/?session_id={CHECKOUT_SESSION_ID}"


def create_session(client: stripe.StripeClient, *prices: str, **extra: Any) -> Any:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": price, "quantity": i + 1} for i, price in enumerate(prices)],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        **extra,
    }
    # Tests send whatever extras they test, valid for the SDK's types or not.
    return client.v1.checkout.sessions.create(params=cast("SessionCreateParams", params))


def pay_form(url: str, card: str, email: str = "buyer@example.com") -> requests.Response:
    form = {"email": email, "card": card, "expiry": "12 / 34", "cvc": "123", "name": "Ada"}
    return requests.post(url, data=form, allow_redirects=False, timeout=10)


def test_create_and_retrieve_with_line_items(
    stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    mug, tee = make_price(1500, name="Mug"), make_price(2000, name="Tee")

    session = create_session(
        stripe_client,
        mug.id,
        tee.id,
        customer_email="a@example.com",
        client_reference_id="order-7",
        metadata={"order": "7"},
        automatic_tax={"enabled": True},
    )
    expanded = stripe_client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items"]}
    )
    items = stripe_client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 1})

    assert session.id.startswith("cs_test_")
    assert session.amount_subtotal == session.amount_total == 1500 + 2 * 2000
    assert session.currency == "usd"
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.url.endswith(f"/pay/{session.id}")
    assert session.automatic_tax.enabled is True
    assert session.client_reference_id == "order-7"
    assert session.payment_intent is None
    assert 24 * 3600 - 5 <= session.expires_at - session.created <= 24 * 3600
    assert expanded.line_items is not None
    assert [i.price.id if i.price else None for i in expanded.line_items.data] == [mug.id, tee.id]
    assert expanded.line_items.data[1].quantity == 2
    assert expanded.line_items.data[1].amount_total == 4000
    assert expanded.line_items.data[0].description == "Mug"
    assert items.has_more is True and items.data[0].object == "item"


def test_bad_line_items(stripe_client: stripe.StripeClient, make_price: Any) -> None:
    price = make_price()
    stripe_client.v1.prices.update(price.id, params={"active": False})

    with pytest.raises(stripe.InvalidRequestError) as inactive:
        create_session(stripe_client, price.id)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        create_session(stripe_client, "price_nope")
    with pytest.raises(stripe.InvalidRequestError) as quantity:
        stripe_client.v1.checkout.sessions.create(
            params={"mode": "payment", "line_items": [{"price": make_price().id, "quantity": 0}]}
        )

    assert inactive.value.param == unknown.value.param == "line_items[0][price]"
    assert unknown.value.code == "resource_missing"
    assert quantity.value.http_status == 400
    assert quantity.value.param == "line_items[0][quantity]"


@pytest.mark.parametrize("ahead", [29 * 60, 24 * 3600 + 60])
def test_expires_at_out_of_range(
    stripe_client: stripe.StripeClient, make_price: Any, ahead: int
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        create_session(stripe_client, make_price().id, expires_at=int(time.time()) + ahead)

    assert excinfo.value.param == "expires_at"


def test_pay_on_hosted_page(hooked: Emulator, receiver: Receiver) -> None:
    client = hooked.client()
    price = client.v1.prices.create(
        params={"unit_amount": 1250, "currency": "usd", "product_data": {"name": "Mug"}}
    )
    session = create_session(client, price.id, customer_email="ada@example.com")

    page = requests.get(session.url, timeout=10)
    paid = pay_form(session.url, "4242 4242 4242 4242", email="ada@example.com")
    hooked.flush()
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    completed = wait_until(lambda: receiver.of_type("checkout.session.completed"))[0]
    event = stripe.Webhook.construct_event(
        completed.body.decode(), completed.headers["Stripe-Signature"], SECRET
    )

    assert page.status_code == HTTPStatus.OK
    assert "Mug" in page.text and "$12.50" in page.text and "ada@example.com" in page.text
    assert paid.status_code == HTTPStatus.SEE_OTHER
    assert paid.headers["Location"] == SUCCESS.replace("{CHECKOUT_SESSION_ID}", session.id)
    assert done.status == "complete" and done.payment_status == "paid"
    assert done.customer_details.email == "ada@example.com"
    assert done.payment_intent.status == "succeeded"
    assert done.payment_intent.amount_received == 1250
    assert done.payment_intent.latest_charge.startswith("ch_")
    assert event.type == "checkout.session.completed"
    assert event.data.object.id == session.id
    assert event.data.object.payment_status == "paid"
    assert completed.headers["Content-Type"] == "application/json; charset=utf-8"
    assert [e["type"] for e in receiver.events()] == [
        "product.created",
        "price.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    assert "is paid" in requests.get(f"{hooked.api_base}/pay/{session.id}", timeout=10).text


@pytest.mark.parametrize(
    ("card", "status", "message"),
    [
        ("4000 0000 0000 0002", HTTPStatus.PAYMENT_REQUIRED, "Your card was declined."),
        ("4000000000009995", HTTPStatus.PAYMENT_REQUIRED, "Your card has insufficient funds."),
        ("1234 5678 9012 3456", HTTPStatus.BAD_REQUEST, "Your card number is incorrect."),
    ],
)
def test_refused_cards_leave_session_open(
    stripe_client: stripe.StripeClient, make_price: Any, card: str, status: int, message: str
) -> None:
    session = create_session(stripe_client, make_price().id)

    response = pay_form(session.url, card)

    assert response.status_code == status
    assert message.replace("'", "&#x27;") in response.text
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_missing_email_is_refused(stripe_client: stripe.StripeClient, make_price: Any) -> None:
    session = create_session(stripe_client, make_price().id)

    response = pay_form(session.url, "4242424242424242", email="")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "email" in response.text.lower()
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_page_escapes_and_links_back(stripe_client: stripe.StripeClient, make_price: Any) -> None:
    price = make_price(name="<script>alert(1)</script>")
    session = create_session(stripe_client, price.id)

    page = requests.get(session.url, timeout=10).text

    assert "<script>alert" not in page  # the page's own script is not the product's name
    assert "&lt;script&gt;" in page
    back = CANCEL.replace("{CHECKOUT_SESSION_ID}", session.id)
    link = re.search(r"href='([^']+)'>&larr; Back", page)
    assert link is not None
    assert link.group(1) == back.replace("&", "&amp;")


def test_zero_decimal_currency(stripe_client: stripe.StripeClient, make_price: Any) -> None:
    session = create_session(stripe_client, make_price(1200, currency="jpy").id)

    page = requests.get(session.url, timeout=10).text

    assert "¥1,200" in page and "¥1,200.00" not in page


def expired_events(emulator: Emulator, session_id: str) -> list[Any]:
    events = emulator.client().v1.events.list(params={"type": "checkout.session.expired"})
    return [e for e in events.data if e.data.object.id == session_id]


def test_expire_through_api(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    session = create_session(stripe_client, make_price().id)

    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.expire(session.id)
    result = emulator.pay(session.id)
    page = requests.get(f"{emulator.api_base}/pay/{session.id}", timeout=10).text

    assert expired.status == "expired" and expired.url is None
    assert result["paid"] is False
    assert "has expired" in page and "Back" in page
    assert len(expired_events(emulator, session.id)) == 1


def test_expire_by_time(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    session = create_session(stripe_client, make_price().id, expires_at=int(time.time()) + 31 * 60)

    emulator.advance_clock(32 * 60)
    retrieved = stripe_client.v1.checkout.sessions.retrieve(session.id)
    refused = pay_form(f"{emulator.api_base}/pay/{session.id}", "4242424242424242")

    assert retrieved.status == "expired"
    assert refused.status_code == HTTPStatus.CONFLICT
    assert "expired" in refused.text
    assert len(expired_events(emulator, session.id)) == 1


def test_list_sessions_by_payment_intent(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    paid = create_session(stripe_client, make_price().id)
    create_session(stripe_client, make_price().id)

    result = emulator.pay(paid.id)
    intent = result["session"]["payment_intent"]
    found = stripe_client.v1.checkout.sessions.list(params={"payment_intent": intent})

    assert result["paid"] is True
    assert [s.id for s in found.data] == [paid.id]
