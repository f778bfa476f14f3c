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


def paid_with(emulator: Emulator, client: stripe.StripeClient, make_price: Any, card: str) -> str:
    session = client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": make_price(3000).id, "quantity": 1}]}
    )
    return emulator.pay(session.id, card=card)["session"]["payment_intent"]


def types_since(client: stripe.StripeClient, event_id: str) -> list[str]:
    events = client.v1.events.list(params={"ending_before": event_id, "limit": 100}).data
    return [e.type for e in reversed(events)]


def test_a_charge_no_longer_embeds_its_refunds_unless_expanded(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = paid_intent(emulator, stripe_client, make_price)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": 100})
    charge_id = str(refund.charge)

    plain = stripe_client.v1.charges.retrieve(charge_id).to_dict()
    expanded = stripe_client.v1.charges.retrieve(charge_id, params={"expand": ["refunds"]})

    assert "refunds" not in plain  # removed in API 2022-11-15
    assert expanded.refunds is not None
    assert [r.id for r in expanded.refunds.data] == [refund.id]


def test_refunds_list_by_charge_and_by_payment_intent(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    one = paid_intent(emulator, stripe_client, make_price)
    other = paid_intent(emulator, stripe_client, make_price)
    first = stripe_client.v1.refunds.create(params={"payment_intent": one, "amount": 100})
    stripe_client.v1.refunds.create(params={"payment_intent": other, "amount": 100})

    by_charge = stripe_client.v1.refunds.list(params={"charge": str(first.charge)}).data
    by_intent = stripe_client.v1.refunds.list(params={"payment_intent": one}).data

    assert [r.id for r in by_charge] == [r.id for r in by_intent] == [first.id]


def test_card_5126_refund_succeeds_then_fails_when_the_clock_moves(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = paid_with(emulator, stripe_client, make_price, "4000000000005126")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": 1000})
    charge_id = str(refund.charge)
    before = stripe_client.v1.charges.retrieve(charge_id)
    mark = stripe_client.v1.events.list(params={"limit": 1}).data[0].id

    emulator.advance_clock(60)
    failed = stripe_client.v1.refunds.retrieve(refund.id)
    after = stripe_client.v1.charges.retrieve(charge_id)

    assert refund.status == "succeeded"
    assert before.amount_refunded == 1000
    assert failed.status == "failed"
    assert failed.failure_reason == "expired_or_canceled_card"
    assert after.amount_refunded == 0 and after.refunded is False
    assert types_since(stripe_client, mark) == [
        "refund.updated",
        "charge.refund.updated",
        "refund.failed",
    ]
    updated = stripe_client.v1.events.list(params={"type": "refund.updated", "limit": 1}).data[0]
    assert updated.data.previous_attributes is not None
    assert updated.data.previous_attributes["status"] == "succeeded"


def test_card_7726_refund_is_pending_then_succeeds(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = paid_with(emulator, stripe_client, make_price, "4000000000007726")

    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent})
    charge = stripe_client.v1.charges.retrieve(str(refund.charge))
    emulator.advance_clock(60)
    later = stripe_client.v1.refunds.retrieve(refund.id)

    assert refund.status == "pending" and refund.pending_reason == "processing"
    assert charge.amount_refunded == 3000 and charge.refunded is True  # held back meanwhile
    assert later.status == "succeeded"


def test_a_pending_refund_can_need_action_then_be_canceled(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = paid_with(emulator, stripe_client, make_price, "4000000000007726")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": 500})

    waiting = emulator.transition_refund(refund.id, "requires_action")
    canceled = stripe_client.v1.refunds.cancel(refund.id)
    charge = stripe_client.v1.charges.retrieve(str(refund.charge))
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.cancel(refund.id)

    assert waiting["status"] == "requires_action"
    assert waiting["next_action"]["type"] == "display_details"
    assert canceled.status == "canceled" and canceled.failure_reason == "merchant_request"
    assert charge.amount_refunded == 0


def test_a_pending_refund_fails_by_hand_and_a_refund_cannot_go_back(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = paid_with(emulator, stripe_client, make_price, "4000000000007726")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent})

    failed = emulator.transition_refund(refund.id, "failed", failure_reason="insufficient_funds")
    status, refused = emulator.request(
        "POST", f"/_emulator/refunds/{refund.id}/transition", {"to": "succeeded"}
    )
    again = stripe_client.v1.refunds.create(params={"payment_intent": intent})

    assert failed["failure_reason"] == "insufficient_funds"
    assert status == 400, refused
    assert again.amount == 3000  # the failed refund gave the whole amount back
