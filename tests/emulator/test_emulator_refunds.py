"""Refunds against a paid Checkout Session's PaymentIntent."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator


def paid_intent(emulator: Emulator, client: stripe.StripeClient, make_price: Any) -> str:
    session = client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": make_price(3000).id, "quantity": 1}]}
    )
    return emulator.pay(session.id)["session"]["payment_intent"]


def test_partial_then_full_refund(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = paid_intent(emulator, stripe_client, make_price)

    partial = stripe_client.v1.refunds.create(
        params={"payment_intent": intent, "amount": 1000, "metadata": {"why": "dent"}}
    )
    rest = stripe_client.v1.refunds.create(params={"payment_intent": intent})
    listed = stripe_client.v1.refunds.list(params={"payment_intent": intent})
    assert isinstance(partial.charge, str)
    charge = stripe_client.v1.charges.retrieve(partial.charge)
    refunded = stripe_client.v1.events.list(params={"type": "charge.refunded"}).data
    created = stripe_client.v1.events.list(params={"type": "refund.created"}).data

    assert partial.status == "succeeded" and partial.amount == 1000
    assert partial.metadata is not None
    assert partial.metadata.to_dict() == {"why": "dent"}
    assert rest.amount == 2000
    assert stripe_client.v1.refunds.retrieve(rest.id).payment_intent == intent
    assert [r.id for r in listed.data] == [rest.id, partial.id]
    assert charge.amount_refunded == 3000 and charge.refunded is True
    assert [e.data.object.id for e in created] == [rest.id, partial.id]
    assert [e.data.object.amount_refunded for e in refunded] == [3000, 1000]
    assert [e.data.object.refunded for e in refunded] == [True, False]
    assert refunded[0].data.object.payment_intent == intent
    assert refunded[0].data.previous_attributes is not None
    assert refunded[0].data.previous_attributes.amount_refunded == 1000


def test_over_refund_is_refused(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = paid_intent(emulator, stripe_client, make_price)
    stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": 2500})

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": 501})
    stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": 500})
    with pytest.raises(stripe.InvalidRequestError) as already:
        stripe_client.v1.refunds.create(params={"payment_intent": intent})

    assert too_much.value.http_status == 400 and too_much.value.param == "amount"
    assert "$5.01" in too_much.value.user_message
    assert already.value.code == "charge_already_refunded"
