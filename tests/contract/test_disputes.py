"""Disputes made with Stripe's test PaymentMethods, in Stripe's shape."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.support.contract import Target

SAMPLES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "fixtures3.json").read_text()
)["resources"]


def dispute_of(target: Target, intent: Any) -> Any:
    return target.wait_for(
        lambda: next(
            iter(target.client.v1.disputes.list({"payment_intent": intent.id}).data), None
        ),
        what="the dispute opens",
    )


def test_pm_card_create_dispute_is_disputed_as_fraudulent(target: Target) -> None:
    since = int(time.time()) - 5
    intent = target.paid_intent("pm_card_createDispute", 3000)

    dispute = dispute_of(target, intent)
    charge = target.client.v1.charges.retrieve(str(intent.latest_charge))

    assert intent.status == "succeeded"
    assert (dispute.reason, dispute.status, dispute.amount) == (
        "fraudulent",
        "needs_response",
        3000,
    )
    assert dispute.charge == charge.id and charge.disputed is True
    assert not set(SAMPLES["dispute"]) - set(dispute.to_dict())
    assert target.client.v1.disputes.retrieve(dispute.id).id == dispute.id
    assert dispute.id in [d.id for d in target.client.v1.disputes.list({"charge": charge.id}).data]
    created = target.wait_for(
        lambda: target.events_about(dispute.id, since, "charge.dispute.created"),
        what="charge.dispute.created",
    )
    assert created[0].data.object.status == "needs_response"
    with pytest.raises(stripe.InvalidRequestError):
        target.client.v1.refunds.create({"payment_intent": intent.id})


def test_closing_a_dispute_loses_it(target: Target) -> None:
    since = int(time.time()) - 5
    dispute = dispute_of(target, target.paid_intent("pm_card_createDispute"))

    closed = target.client.v1.disputes.close(dispute.id)

    assert closed.status == "lost"
    events = target.wait_for(
        lambda: target.events_about(dispute.id, since, "charge.dispute.closed"),
        what="charge.dispute.closed",
    )
    assert events[-1].data.object.status == "lost"


def test_winning_evidence_wins(target: Target) -> None:
    dispute = dispute_of(target, target.paid_intent("pm_card_createDispute"))

    answered = target.client.v1.disputes.update(
        dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    won: Any = target.wait_for(
        lambda: (d := target.client.v1.disputes.retrieve(dispute.id)).status == "won" and d,
        what="the dispute is won",
    )

    assert answered.evidence.uncategorized_text == "winning_evidence"
    assert won.status == "won"
