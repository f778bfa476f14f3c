"""PaymentIntents made directly with Stripe's test PaymentMethods (pm_card_visa, ...)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator


def card(**fields: Any) -> Any:
    """PaymentIntent parameters for cards only (API 2026-10-28 calls the list
    `allowed_payment_method_types`, no longer `payment_method_types`)."""
    return {"allowed_payment_method_types": ["card"], **fields}


def test_pm_card_visa_pays_at_once(stripe_client: stripe.StripeClient) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params=card(
            amount=1234,
            currency="usd",
            payment_method="pm_card_visa",
            confirm=True,
            metadata={"test": "yes"},
        )
    )
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    types = [e.type for e in stripe_client.v1.events.list().data]

    assert intent.status == "succeeded" and intent.amount_received == 1234
    assert charge.amount == 1234 and charge.paid and charge.payment_intent == intent.id
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card is not None
    assert charge.payment_method_details.card.last4 == "4242"
    assert types == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]


def test_a_declined_test_card_is_a_card_error_with_the_intent(
    stripe_client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.payment_intents.create(
            params=card(
                amount=500, currency="usd", payment_method="pm_card_chargeDeclined", confirm=True
            )
        )

    error = declined.value.error
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"
    assert error is not None and error.payment_intent is not None
    assert error.payment_intent.status == "requires_payment_method"


def test_confirming_needs_card_types_or_a_return_url(stripe_client: stripe.StripeClient) -> None:
    visa: Any = {"amount": 500, "currency": "usd", "payment_method": "pm_card_visa"}
    bare: Any = {**visa, "confirm": True}
    never: Any = {
        **bare,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
    }
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(params=bare)
    automatic = stripe_client.v1.payment_intents.create(params=never)

    assert "return_url" in str(refused.value.user_message)
    assert automatic.status == "succeeded"


def test_a_direct_payment_intent_can_be_canceled_before_it_is_paid(
    stripe_client: stripe.StripeClient,
) -> None:
    waiting = stripe_client.v1.payment_intents.create(params=card(amount=500, currency="usd"))

    canceled = stripe_client.v1.payment_intents.cancel(waiting.id)

    assert waiting.status == "requires_payment_method"
    assert canceled.status == "canceled"


def test_an_unknown_payment_method_is_resource_missing(
    stripe_client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.payment_intents.create(
            params=card(amount=500, currency="usd", payment_method="pm_nope")
        )

    assert missing.value.code == "resource_missing" and missing.value.param == "payment_method"


def test_pm_card_create_dispute_and_refund_fail_behave_as_their_cards(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    def paid(method: str) -> stripe.PaymentIntent:
        return stripe_client.v1.payment_intents.create(
            params=card(amount=2000, currency="usd", payment_method=method, confirm=True)
        )

    disputed = paid("pm_card_createDispute")
    failing = paid("pm_card_refundFail")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": failing.id})
    emulator.advance_clock(60)

    disputes = stripe_client.v1.disputes.list(params={"payment_intent": disputed.id}).data
    assert [d.reason for d in disputes] == ["fraudulent"]
    assert stripe_client.v1.refunds.retrieve(refund.id).status == "failed"
