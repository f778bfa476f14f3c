"""PaymentIntent rules the shop relies on."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.support.contract import Target


def test_a_payment_intent_not_yet_paid_can_be_canceled(target: Target) -> None:
    params: Any = {
        "amount": 1000,
        "currency": "usd",
        "allowed_payment_method_types": ["card"],
        "metadata": target.tag,
    }
    waiting = target.client.v1.payment_intents.create(params)

    canceled = target.client.v1.payment_intents.cancel(waiting.id)

    assert waiting.status == "requires_payment_method"
    assert canceled.status == "canceled"


def test_a_paid_payment_intent_cannot_be_canceled(target: Target) -> None:
    intent = target.paid_intent("pm_card_visa")

    with pytest.raises(stripe.InvalidRequestError) as refused:
        target.client.v1.payment_intents.cancel(intent.id)

    assert refused.value.code == "payment_intent_unexpected_state"


def test_a_declined_card_is_a_card_error(target: Target) -> None:
    with pytest.raises(stripe.CardError) as declined:
        target.paid_intent("pm_card_chargeDeclined")

    assert declined.value.code == "card_declined"


def test_a_checkout_sessions_payment_intent_cannot_be_canceled(target: Target) -> None:
    emulator = target.emulator_only(
        "a Checkout Session gets its PaymentIntent once a shopper pays on the hosted page"
    )
    session = target.session()
    emulator.pay(session.id, method="bank_transfer")  # processing: money on its way
    intent = str(target.client.v1.checkout.sessions.retrieve(session.id).payment_intent)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        target.client.v1.payment_intents.cancel(intent)

    assert refused.value.code == "payment_intent_unexpected_state"
    assert target.client.v1.payment_intents.retrieve(intent).status == "processing"


def test_a_session_free_after_a_code_needs_no_payment(target: Target) -> None:
    emulator = target.emulator_only("completing a hosted page takes a shopper at Stripe")
    coupon = target.made_one(
        "coupon", target.client.v1.coupons.create({"percent_off": 100, "duration": "once"})
    )
    target.made_one(
        "promotion_code",
        target.client.v1.promotion_codes.create(
            {"code": "FREE", "promotion": {"type": "coupon", "coupon": coupon.id}}
        ),
    )
    session = target.session(allow_promotion_codes=True)

    emulator.pay(session.id, card="", promotion_code="FREE")
    done = target.client.v1.checkout.sessions.retrieve(session.id)

    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    assert done.payment_intent is None
