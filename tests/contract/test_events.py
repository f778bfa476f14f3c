"""The events each action sends, read back through the Events API, in Stripe's shapes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.support.contract import Target

SAMPLES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "fixtures3.json").read_text()
)["resources"]
# Not sent by the pinned API version: charges stopped embedding `refunds` (2022-11-15).
REMOVED = {"charge": {"refunds"}}


def assert_shape(event: Any) -> None:
    obj = event.data.object.to_dict()
    missing = set(SAMPLES[obj["object"]]) - set(obj) - REMOVED.get(obj["object"], set())
    assert not missing, f"{event.type} lacks {sorted(missing)}"
    assert not set(SAMPLES["event"]) - set(event.to_dict()), event.type


def wait_types(target: Target, obj_id: str, since: int, *types: str) -> list[Any]:
    def found() -> list[Any] | None:
        events = target.events_about(obj_id, since, *types)
        return events if {e.type for e in events} >= set(types) else None

    return target.wait_for(found, what=f"{types} for {obj_id}")


def test_a_payment_sends_intent_and_charge_events(target: Target) -> None:
    since = int(time.time()) - 5

    intent = target.paid_intent("pm_card_visa")

    intent_events = wait_types(
        target, intent.id, since, "payment_intent.created", "payment_intent.succeeded"
    )
    charge_events = wait_types(target, str(intent.latest_charge), since, "charge.succeeded")
    for event in [*intent_events, *charge_events]:
        assert_shape(event)
    assert charge_events[0].data.object.payment_intent == intent.id


def test_a_refund_sends_refund_and_charge_events(target: Target) -> None:
    intent = target.paid_intent("pm_card_visa")
    since = int(time.time()) - 5

    refund = target.client.v1.refunds.create({"payment_intent": intent.id, "amount": 300})

    refund_events = wait_types(target, refund.id, since, "refund.created")
    charge_events = wait_types(target, str(intent.latest_charge), since, "charge.refunded")
    for event in [*refund_events, *charge_events]:
        assert_shape(event)
    assert charge_events[0].data.previous_attributes is not None


def test_a_dispute_sends_created_and_funds_withdrawn(target: Target) -> None:
    since = int(time.time()) - 5
    intent = target.paid_intent("pm_card_createDispute")
    dispute = target.wait_for(
        lambda: next(
            iter(target.client.v1.disputes.list({"payment_intent": intent.id}).data), None
        ),
        what="the dispute opens",
    )

    events = wait_types(
        target, dispute.id, since, "charge.dispute.created", "charge.dispute.funds_withdrawn"
    )

    for event in events:
        assert_shape(event)


def test_an_expired_session_sends_checkout_session_expired(target: Target) -> None:
    session = target.session()
    since = int(time.time()) - 5

    target.client.v1.checkout.sessions.expire(session.id)

    [event] = wait_types(target, session.id, since, "checkout.session.expired")
    assert_shape(event)
    assert event.data.object.status == "expired"
