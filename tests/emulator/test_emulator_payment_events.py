"""The events Stripe sends for what Amazin does, in Stripe's order and shape.

Shapes are held against Stripe's own samples (`fixtures3.json`): every event's
object carries every field of the sample for its type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from tests.support.emulator import Emulator

FIXTURES3 = Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "fixtures3.json"
SAMPLES = json.loads(FIXTURES3.read_text())["resources"]


def events_since(client: stripe.StripeClient, event_id: str | None) -> list[dict[str, Any]]:
    """Events after `event_id`, oldest first."""
    params: Any = {"limit": 100}
    if event_id:
        params["ending_before"] = event_id
    events = [e.to_dict() for e in client.v1.events.list(params=params).data]
    return list(reversed(events))


def last_event_id(client: stripe.StripeClient) -> str | None:
    data = client.v1.events.list(params={"limit": 1}).data
    return data[0].id if data else None


# Fields of a sample that the pinned API version no longer sends: charges stopped
# embedding `refunds` in API 2022-11-15 (`expand[]=refunds` brings them back).
REMOVED = {"charge": {"refunds"}}


def assert_shapes(events: list[dict[str, Any]]) -> None:
    for event in events:
        obj = event["data"]["object"]
        sample = SAMPLES[obj["object"]]
        missing = set(sample) - set(obj) - REMOVED.get(obj["object"], set())
        assert not missing, f"{event['type']} lacks {sorted(missing)}"
        assert not set(SAMPLES["event"]) - set(event), event["type"]


@pytest.fixture
def session_for(stripe_client: stripe.StripeClient, make_price: Any) -> Any:
    def make(**extra: Any) -> stripe.checkout.Session:
        price = make_price(2500)
        params: Any = {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": "https://example.com/ok?session_id={CHECKOUT_SESSION_ID}",
            **extra,
        }
        return stripe_client.v1.checkout.sessions.create(params=params)

    return make


def test_card_payment_creates_customer_then_charge_intent_and_session(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    session = session_for(customer_creation="always")
    before = last_event_id(stripe_client)

    assert emulator.pay(session.id, email="ada@example.com")["paid"] is True

    events = events_since(stripe_client, before)
    assert [e["type"] for e in events] == [
        "customer.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    assert_shapes(events)
    customer, charge, intent, completed = (e["data"]["object"] for e in events)
    assert customer["email"] == "ada@example.com"
    assert completed["customer"] == intent["customer"] == charge["customer"] == customer["id"]
    assert completed["payment_status"] == "paid"
    assert charge["status"] == "succeeded" and charge["payment_intent"] == intent["id"]
    assert stripe_client.v1.customers.retrieve(customer["id"]).email == "ada@example.com"


def test_no_customer_unless_asked(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    session = session_for()
    before = last_event_id(stripe_client)

    emulator.pay(session.id)

    types = [e["type"] for e in events_since(stripe_client, before)]
    assert "customer.created" not in types
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).customer is None


def test_declined_card_fails_the_intent_and_the_session_stays_open(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    session = session_for()
    before = last_event_id(stripe_client)

    declined = emulator.pay(session.id, card="4000000000000002")
    after_decline = events_since(stripe_client, before)
    paid = emulator.pay(session.id)

    assert declined["paid"] is False and declined["error"]["code"] == "card_declined"
    assert [e["type"] for e in after_decline] == ["payment_intent.payment_failed"]
    assert_shapes(after_decline)
    failed = after_decline[0]["data"]["object"]
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["decline_code"] == "generic_decline"
    assert paid["paid"] is True
    # The retry pays the same PaymentIntent, as Checkout does.
    assert paid["session"]["payment_intent"] == failed["id"]


@pytest.mark.parametrize("succeeded", [True, False])
def test_bank_transfer_completes_unpaid_and_settles_later(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any, succeeded: bool
) -> None:
    session = session_for()
    before = last_event_id(stripe_client)

    result = emulator.pay(session.id, method="bank_transfer")
    at_checkout = events_since(stripe_client, before)
    settled = emulator.settle(session.id, succeeded=succeeded)
    later = events_since(stripe_client, at_checkout[-1]["id"])

    assert result["paid"] is False and result["session"]["status"] == "complete"
    assert [e["type"] for e in at_checkout] == [
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
    ]
    assert at_checkout[-1]["data"]["object"]["payment_status"] == "unpaid"
    if succeeded:
        assert [e["type"] for e in later] == [
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.async_payment_succeeded",
        ]
        assert settled["payment_status"] == "paid"
    else:
        assert [e["type"] for e in later] == [
            "charge.failed",
            "payment_intent.payment_failed",
            "checkout.session.async_payment_failed",
        ]
        assert settled["payment_status"] == "unpaid"
    assert_shapes(at_checkout + later)
    status, again = emulator.request(
        "POST", f"/_emulator/sessions/{session.id}/settle", {"outcome": "succeeded"}
    )
    assert status == 400, again


def test_hosted_page_offers_a_bank_transfer(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    session = session_for()

    _, page = emulator.request("GET", f"/pay/{session.id}")
    paid = requests.post(
        f"{emulator.api_base}/pay/{session.id}",
        data={"email": "bo@example.com", "method": "bank_transfer"},
        allow_redirects=False,
        timeout=10,
    )

    assert "Bank transfer (settles later)" in page
    assert paid.status_code == 303
    assert paid.headers["Location"] == f"https://example.com/ok?session_id={session.id}"
    done = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "unpaid")


def test_refund_fires_created_refunded_then_updated(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    session = session_for()
    emulator.pay(session.id)
    intent = stripe_client.v1.checkout.sessions.retrieve(session.id).payment_intent
    before = last_event_id(stripe_client)

    refund = stripe_client.v1.refunds.create(params={"payment_intent": str(intent)})

    events = events_since(stripe_client, before)
    assert [e["type"] for e in events] == [
        "refund.created",
        "charge.refunded",
        "refund.updated",
        "charge.refund.updated",
    ]
    assert_shapes(events)
    updated = events[-2]["data"]
    assert updated["object"]["destination_details"]["card"]["reference_status"] == "available"
    assert updated["previous_attributes"]["destination_details"]["card"]["reference"] is None
    assert refund.status == "succeeded"


def test_dashboard_settles_a_bank_transfer(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    session = session_for()
    emulator.pay(session.id, method="bank_transfer")

    _, dashboard = emulator.request("GET", "/")
    settled = requests.post(
        f"{emulator.api_base}/dashboard/sessions/{session.id}/settle",
        data={"outcome": "failed"},
        allow_redirects=False,
        timeout=10,
    )

    assert f"/dashboard/sessions/{session.id}/settle" in dashboard
    assert settled.status_code == 303 and "failed" in settled.headers["Location"]
    types = [e.type for e in stripe_client.v1.events.list(params={"limit": 1}).data]
    assert types == ["checkout.session.async_payment_failed"]


def test_a_checkout_payment_intent_cannot_be_canceled_even_while_processing(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    """PaymentIntentService.cancel: "You can directly cancel the PaymentIntent for a
    Checkout Session only when the PaymentIntent has a status of requires_capture."
    """
    session = session_for()
    paid = emulator.pay(session.id, method="bank_transfer")
    intent_id = paid["session"]["payment_intent"]
    before = last_event_id(stripe_client)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.cancel(
            intent_id, params={"cancellation_reason": "abandoned"}
        )

    assert refused.value.code == "payment_intent_unexpected_state"
    assert session.id in refused.value.user_message
    assert stripe_client.v1.payment_intents.retrieve(intent_id).status == "processing"
    assert events_since(stripe_client, before) == []
    settled = emulator.settle(session.id)  # the transfer can still arrive
    assert settled["payment_status"] == "paid"


def test_cancel_refuses_a_payment_intent_it_cannot_cancel(
    emulator: Emulator, stripe_client: stripe.StripeClient, session_for: Any
) -> None:
    by_card, by_transfer, still_open = session_for(), session_for(), session_for()
    succeeded = emulator.pay(by_card.id)["session"]["payment_intent"]
    on_its_way = emulator.pay(by_transfer.id, method="bank_transfer")["session"]["payment_intent"]
    emulator.pay(still_open.id, card="4000000000000002")  # declined: its session stays open
    declined = stripe_client.v1.payment_intents.list(params={"limit": 1}).data[0]
    before = last_event_id(stripe_client)

    # Succeeded, and two of Checkout Sessions (processing; open: expire the session).
    for intent_id in (succeeded, on_its_way, declined.id):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_client.v1.payment_intents.cancel(intent_id)
        assert refused.value.code == "payment_intent_unexpected_state"
        assert refused.value.http_status == 400
    status, body = emulator.request(
        "POST", f"/v1/payment_intents/{succeeded}/cancel", {"cancellation_reason": "bored"}
    )

    assert status == 400 and body["error"]["param"] == "cancellation_reason"
    assert stripe_client.v1.payment_intents.retrieve(succeeded).status == "succeeded"
    assert declined.status == "requires_payment_method"
    assert stripe_client.v1.payment_intents.retrieve(declined.id).status == declined.status
    assert events_since(stripe_client, before) == []
