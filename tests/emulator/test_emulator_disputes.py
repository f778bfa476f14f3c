"""Disputes: opened by Stripe's test cards or by hand, answered with evidence, closed."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator


def pay(emulator: Emulator, client: stripe.StripeClient, make_price: Any, card: str) -> str:
    session = client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price": make_price(4000).id, "quantity": 1}]}
    )
    return emulator.pay(session.id, card=card)["session"]["payment_intent"]


def types_since(client: stripe.StripeClient, event_id: str | None) -> list[str]:
    params: Any = {"limit": 100, **({"ending_before": event_id} if event_id else {})}
    return [e.type for e in reversed(client.v1.events.list(params=params).data)]


def last_event(client: stripe.StripeClient) -> str:
    return client.v1.events.list(params={"limit": 1}).data[0].id


def test_card_0259_pays_then_is_disputed_as_fraudulent(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = pay(emulator, stripe_client, make_price, "4000000000000259")

    disputes = stripe_client.v1.disputes.list(params={"payment_intent": intent}).data
    charge = stripe_client.v1.charges.retrieve(
        str(stripe_client.v1.payment_intents.retrieve(intent).latest_charge)
    )
    types = types_since(stripe_client, None)

    assert len(disputes) == 1
    dispute = disputes[0]
    assert (dispute.reason, dispute.status, dispute.amount) == (
        "fraudulent",
        "needs_response",
        4000,
    )
    assert dispute.charge == charge.id and charge.disputed is True
    assert dispute.is_charge_refundable is False
    assert (dispute.evidence_details.due_by or 0) > dispute.created
    assert [bt.amount for bt in dispute.balance_transactions] == [-4000]
    assert types[-3:] == [
        "checkout.session.completed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    assert stripe_client.v1.disputes.list(params={"charge": charge.id}).data[0].id == dispute.id
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.refunds.create(params={"payment_intent": intent})
    assert refused.value.code == "charge_disputed"


def test_winning_evidence_wins_and_reinstates_the_funds(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = pay(emulator, stripe_client, make_price, "4000000000000259")
    dispute = stripe_client.v1.disputes.list(params={"payment_intent": intent}).data[0]
    mark = last_event(stripe_client)

    answered = stripe_client.v1.disputes.update(
        dispute.id,
        params={"evidence": {"uncategorized_text": "winning_evidence"}, "metadata": {"o": "1"}},
    )
    decided = stripe_client.v1.disputes.retrieve(dispute.id)

    assert answered.status == "under_review"
    assert answered.evidence_details.submission_count == 1
    assert answered.evidence.uncategorized_text == "winning_evidence"
    assert decided.status == "won"
    assert [bt.amount for bt in decided.balance_transactions] == [-4000, 4000]
    assert types_since(stripe_client, mark) == [
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]


def test_staged_evidence_waits_and_losing_evidence_loses(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = pay(emulator, stripe_client, make_price, "4000000000000259")
    dispute = stripe_client.v1.disputes.list(params={"payment_intent": intent}).data[0]

    staged = stripe_client.v1.disputes.update(
        dispute.id, params={"evidence": {"product_description": "A mug"}, "submit": False}
    )
    stripe_client.v1.disputes.update(
        dispute.id, params={"evidence": {"uncategorized_text": "losing_evidence"}}
    )
    lost = stripe_client.v1.disputes.retrieve(dispute.id)

    assert staged.status == "needs_response" and staged.evidence_details.has_evidence is True
    assert staged.evidence_details.submission_count == 0
    assert lost.status == "lost"
    assert lost.evidence.product_description == "A mug"


def test_close_accepts_the_dispute_as_lost(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = pay(emulator, stripe_client, make_price, "4000000000000259")
    dispute = stripe_client.v1.disputes.list(params={"payment_intent": intent}).data[0]
    mark = last_event(stripe_client)

    closed = stripe_client.v1.disputes.close(dispute.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.close(dispute.id)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.update(
            dispute.id, params={"evidence": {"uncategorized_text": "too late"}}
        )

    assert closed.status == "lost"
    assert types_since(stripe_client, mark) == ["charge.dispute.closed"]


def test_any_charge_can_be_disputed_by_hand_and_decided(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = pay(emulator, stripe_client, make_price, "4242424242424242")
    charge = str(stripe_client.v1.payment_intents.retrieve(intent).latest_charge)

    opened = emulator.open_dispute(charge, reason="product_not_received")
    won = emulator.decide_dispute(opened["id"], won=True)
    status, twice = emulator.request("POST", f"/_emulator/charges/{charge}/dispute", {})

    assert opened["reason"] == "product_not_received" and opened["status"] == "needs_response"
    assert won["status"] == "won"
    assert status == 400, twice


def test_an_inquiry_moves_no_money(
    emulator: Emulator, stripe_client: stripe.StripeClient, make_price: Any
) -> None:
    intent = pay(emulator, stripe_client, make_price, "4000000000001976")
    dispute = stripe_client.v1.disputes.list(params={"payment_intent": intent}).data[0]

    closed = stripe_client.v1.disputes.close(dispute.id)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent})

    assert dispute.status == "warning_needs_response" and dispute.is_charge_refundable
    assert dispute.balance_transactions == []
    assert closed.status == "warning_closed"
    assert refund.status == "succeeded"
