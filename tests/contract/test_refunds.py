"""Refunds and their statuses, made with Stripe's test PaymentMethods."""

from __future__ import annotations

import time
from typing import Any

from tests.support.contract import Target

# Stripe's test refunds change "some time later"; the emulator's after REFUND_DELAY (60 s).
LATER = 61


def refund(target: Target, intent: Any, **extra: Any) -> Any:
    params: Any = {"payment_intent": intent.id, "metadata": target.tag, **extra}
    return target.client.v1.refunds.create(params)


def test_a_refund_succeeds_and_the_charge_counts_it(target: Target) -> None:
    intent = target.paid_intent("pm_card_visa", 2000)
    since = int(time.time()) - 5

    made = refund(target, intent, amount=500)
    charge = target.client.v1.charges.retrieve(str(intent.latest_charge))
    by_intent = target.client.v1.refunds.list({"payment_intent": intent.id}).data
    by_charge = target.client.v1.refunds.list({"charge": charge.id}).data

    assert made.status == "succeeded" and made.amount == 500
    assert (charge.amount_refunded, charge.refunded) == (500, False)
    assert [r.id for r in by_intent] == [r.id for r in by_charge] == [made.id]
    created = target.wait_for(
        lambda: target.events_about(made.id, since, "refund.created"), what="refund.created"
    )
    refunded = target.wait_for(
        lambda: target.events_about(charge.id, since, "charge.refunded"), what="charge.refunded"
    )
    assert created[0].data.object.status == "succeeded"
    assert refunded[0].data.object.amount_refunded == 500


def test_a_charge_embeds_no_refunds_unless_expanded(target: Target) -> None:
    intent = target.paid_intent("pm_card_visa")
    made = refund(target, intent, amount=100)

    plain = target.client.v1.charges.retrieve(str(intent.latest_charge))
    expanded = target.client.v1.charges.retrieve(str(intent.latest_charge), {"expand": ["refunds"]})

    assert "refunds" not in plain.to_dict()
    assert expanded.refunds is not None and [r.id for r in expanded.refunds.data] == [made.id]


def test_pm_card_refund_fail_succeeds_then_fails(target: Target) -> None:
    intent = target.paid_intent("pm_card_refundFail", 2000)
    since = int(time.time()) - 5

    made = refund(target, intent)
    target.later(LATER)
    failed: Any = target.wait_for(
        lambda: (r := target.client.v1.refunds.retrieve(made.id)).status == "failed" and r,
        what="the refund fails",
    )
    charge = target.client.v1.charges.retrieve(str(intent.latest_charge))

    assert made.status == "succeeded"
    assert failed.failure_reason
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    events = target.wait_for(
        lambda: target.events_about(made.id, since, "refund.failed"), what="refund.failed"
    )
    assert events[0].data.object.status == "failed"


def test_pm_card_pending_refund_waits_then_succeeds(target: Target) -> None:
    intent = target.paid_intent("pm_card_pendingRefund", 2000)

    made = refund(target, intent)
    target.later(LATER)
    done: Any = target.wait_for(
        lambda: (r := target.client.v1.refunds.retrieve(made.id)).status == "succeeded" and r,
        what="the refund succeeds",
    )

    assert made.status == "pending"
    assert done.status == "succeeded"


def test_a_refund_needing_action_can_be_canceled(target: Target) -> None:
    emulator = target.emulator_only(
        "no test card makes a card refund need action (it happens to some local methods)"
    )
    intent = target.paid_intent("pm_card_pendingRefund", 2000)
    made = refund(target, intent)
    emulator.transition_refund(made.id, "requires_action")

    canceled = target.client.v1.refunds.cancel(made.id)

    assert canceled.status == "canceled"
    charge = target.client.v1.charges.retrieve(str(intent.latest_charge))
    assert charge.amount_refunded == 0
