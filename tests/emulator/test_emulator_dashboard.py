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


def paid_charge(emulator: Emulator, client: stripe.StripeClient, card: str) -> stripe.Charge:
    price = client.v1.prices.create(
        params={"unit_amount": 5000, "currency": "usd", "product_data": {"name": "Kettle"}}
    )
    session = client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": price.id, "quantity": 1}]}
    )
    intent = emulator.pay(session.id, card=card)["session"]["payment_intent"]
    return client.v1.charges.retrieve(str(client.v1.payment_intents.retrieve(intent).latest_charge))


def post(emulator: Emulator, path: str, data: dict[str, str]) -> requests.Response:
    return requests.post(f"{emulator.api_base}{path}", data=data, timeout=10)


def test_payments_list_refunds_in_part_and_in_full(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    charge = paid_charge(emulator, stripe_client, "4242424242424242")

    page = requests.get(emulator.api_base + "/", timeout=10).text
    partly = post(emulator, f"/dashboard/charges/{charge.id}/refund", {"amount": "12.50"})
    rest = post(emulator, f"/dashboard/charges/{charge.id}/refund", {"amount": ""})
    after = requests.get(emulator.api_base + "/", timeout=10).text
    refunds = stripe_client.v1.refunds.list(params={"charge": charge.id}).data

    assert charge.id in page and f"/dashboard/charges/{charge.id}/refund" in page
    assert "Refunded" in partly.url and "Refunded" in rest.url
    assert [r.amount for r in refunds] == [3750, 1250]
    assert all(r.id in after for r in refunds) and ">refunded<" in after
    assert f"/dashboard/charges/{charge.id}/refund" not in after  # nothing left to refund


def test_a_pending_refund_succeeds_or_fails_from_the_dashboard(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    charge = paid_charge(emulator, stripe_client, "4000000000007726")
    first = stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 1000})
    second = stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 1000})

    page = requests.get(emulator.api_base + "/", timeout=10).text
    post(emulator, f"/dashboard/refunds/{first.id}/transition", {"to": "succeeded"})
    post(emulator, f"/dashboard/refunds/{second.id}/transition", {"to": "failed"})

    assert f"/dashboard/refunds/{first.id}/transition" in page
    assert stripe_client.v1.refunds.retrieve(first.id).status == "succeeded"
    assert stripe_client.v1.refunds.retrieve(second.id).status == "failed"
    assert stripe_client.v1.charges.retrieve(charge.id).amount_refunded == 1000


def test_open_a_dispute_and_close_it_won_or_lost(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    won_charge = paid_charge(emulator, stripe_client, "4242424242424242")
    lost_charge = paid_charge(emulator, stripe_client, "4242424242424242")

    post(emulator, f"/dashboard/charges/{won_charge.id}/dispute", {"reason": "fraudulent"})
    post(emulator, f"/dashboard/charges/{lost_charge.id}/dispute", {"reason": "duplicate"})
    won, lost = (
        stripe_client.v1.disputes.list(params={"charge": c.id}).data[0]
        for c in (won_charge, lost_charge)
    )
    page = requests.get(emulator.api_base + "/", timeout=10).text
    post(emulator, f"/dashboard/disputes/{won.id}/decide", {"outcome": "won"})
    post(emulator, f"/dashboard/disputes/{lost.id}/decide", {"outcome": "lost"})

    assert (won.reason, lost.reason) == ("fraudulent", "duplicate")
    assert f"/dashboard/disputes/{won.id}/decide" in page
    assert stripe_client.v1.disputes.retrieve(won.id).status == "won"
    assert stripe_client.v1.disputes.retrieve(lost.id).status == "lost"


def test_the_dashboard_passes_axe(emulator: Emulator, stripe_client: stripe.StripeClient) -> None:
    from tests.support.browser import chromium_page
    from tests.test_accessibility import AXE

    stripe_client.v1.products.create(
        params={"name": "Kettle", "default_price_data": {"unit_amount": 100, "currency": "usd"}}
    )
    charge = paid_charge(emulator, stripe_client, "4000000000007726")
    stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 100})
    emulator.open_dispute(paid_charge(emulator, stripe_client, "4242424242424242").id)

    with chromium_page() as browser:
        browser.page.goto(emulator.api_base + "/")
        browser.page.add_script_tag(path=str(AXE))
        results = browser.page.evaluate("axe.run(document, {resultTypes: ['violations']})")

    found = [
        f"{v['id']} ({v['impact']}): {' '.join(n['target'])}"
        for v in results["violations"]
        for n in v["nodes"]
    ]
    assert found == []
