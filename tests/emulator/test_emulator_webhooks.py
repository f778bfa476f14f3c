"""Webhook delivery: signatures, retries, failure, resend, chaos and drop."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from stripe_emulator.store import Store
from stripe_emulator.webhooks import Deliverer
from tests.emulator.conftest import SECRET, Receiver
from tests.support.emulator import Emulator, running_emulator, wait_until

pytestmark = pytest.mark.emulator


def test_every_delivery_is_signed_like_stripe(hooked: Emulator, receiver: Receiver) -> None:
    client = hooked.client()
    product = client.v1.products.create(params={"name": "Signed"})
    client.v1.products.update(product.id, params={"description": "now described"})

    hooked.flush()
    events = [
        stripe.Webhook.construct_event(r.body.decode(), r.headers["Stripe-Signature"], SECRET)
        for r in receiver.requests
    ]

    assert [e.type for e in events] == ["product.created", "product.updated"]
    assert events[1].data.previous_attributes.description is None
    assert events[1].api_version == stripe.api_version
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            receiver.requests[0].body.decode(),
            receiver.requests[0].headers["Stripe-Signature"],
            "whsec_other",
        )


def test_failed_delivery_is_retried_until_it_succeeds(hooked: Emulator, receiver: Receiver) -> None:
    receiver.statuses.extend([500, 500])

    hooked.client().v1.products.create(params={"name": "Retry me"})
    result = hooked.flush()
    [delivery] = hooked.deliveries()

    assert result["delivered"] == 1 and result["pending"] == 0
    assert delivery["status"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])
    assert len(receiver.requests) == 3
    assert len({r.event["id"] for r in receiver.requests}) == 1


def test_delivery_fails_after_max_attempts_and_can_be_resent(
    hooked: Emulator, receiver: Receiver
) -> None:
    receiver.statuses.extend([503] * 5)
    product = hooked.client().v1.products.create(params={"name": "Unlucky"})

    hooked.flush()
    [failed] = hooked.deliveries()
    event = hooked.client().v1.events.retrieve(failed["event"])
    requests.post(f"{hooked.api_base}/dashboard/events/{failed['event']}/resend", timeout=10)
    hooked.flush()
    [resent] = hooked.deliveries()

    assert failed["status"] == "failed" and len(failed["attempts"]) == 5
    assert event.data.object.id == product.id and event.pending_webhooks == 0
    assert resent["status"] == "delivered" and len(resent["attempts"]) == 6


def test_unreachable_endpoint_records_the_error() -> None:
    with running_emulator(forward_to="http://127.0.0.1:9/hook", max_attempts=2) as emulator:
        emulator.client().v1.products.create(params={"name": "Nobody listens"})

        emulator.flush()
        [delivery] = emulator.deliveries()

    assert delivery["status"] == "failed"
    assert all(a["status"] is None and a["error"] for a in delivery["attempts"])


def test_pending_deliveries_resume_after_restart(receiver: Receiver) -> None:
    receiver.statuses.extend([500] * 3)
    with running_emulator(
        forward_to=receiver.url, webhook_secret=SECRET, retry_base=30
    ) as emulator:
        emulator.client().v1.products.create(params={"name": "Later"})
        wait_until(lambda: len(receiver.requests) == 1)

        receiver.statuses.clear()
        emulator.restart()  # the next retry was 30 s away; it resumes at once on start
        emulator.flush()
        [delivery] = emulator.deliveries()

    assert delivery["status"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [500, 200]


def test_chaos_duplicates_and_reorders_but_loses_nothing(receiver: Receiver) -> None:
    with running_emulator(forward_to=receiver.url, webhook_secret=SECRET, chaos=True) as emulator:
        client = emulator.client()
        for i in range(12):
            client.v1.products.create(params={"name": f"Chaos {i}"})

        emulator.flush()
        created = [e.id for e in client.v1.events.list(params={"limit": 100}).data][::-1]

    received = [e["id"] for e in receiver.events()]
    assert set(received) == set(created)
    assert len(received) > len(created), "some events should arrive twice"
    first_seen = list(dict.fromkeys(received))
    assert first_seen != created, "some events should arrive out of order"


def _drop_run(receiver: Receiver, seed: int) -> tuple[list[str], list[dict[str, Any]], set[str]]:
    """12 events with --drop 0.5: (statuses in creation order, deliveries, ids received)."""
    with running_emulator(
        forward_to=receiver.url, webhook_secret=SECRET, drop=0.5, chaos_seed=seed
    ) as emulator:
        client = emulator.client()
        for i in range(12):
            client.v1.products.create(params={"name": f"Drop {i}"})
        flushed = emulator.flush()
        created = [e.id for e in client.v1.events.list(params={"limit": 100}).data][::-1]
        deliveries = {d["event"]: d for d in emulator.deliveries()}
    assert flushed["flushed"] and flushed["dropped"] > 0
    received = {event["id"] for event in receiver.events()}
    with receiver.lock:
        receiver.requests.clear()
    return [deliveries[e]["status"] for e in created], list(deliveries.values()), received


def test_drop_loses_some_events_for_good_repeatably(receiver: Receiver) -> None:
    statuses, deliveries, received = _drop_run(receiver, seed=7)
    again, _, _ = _drop_run(receiver, seed=7)
    other, _, _ = _drop_run(receiver, seed=8)

    dropped = {d["event"] for d in deliveries if d["status"] == "dropped"}
    assert set(statuses) == {"dropped", "delivered"}
    assert not dropped & received  # never sent...
    assert all(not d["attempts"] for d in deliveries if d["status"] == "dropped")  # ...nor retried
    assert received == {d["event"] for d in deliveries if d["status"] == "delivered"}
    assert again == statuses  # the same seed drops the same events
    assert other != statuses


def test_by_default_retries_follow_stripes_test_mode_schedule() -> None:
    deliverer = Deliverer(Store(None), forward_to="http://127.0.0.1:9/", secret="whsec_x")
    fast = Deliverer(
        Store(None), forward_to="http://127.0.0.1:9/", secret="whsec_x", retry_schedule="fast"
    )

    # Three retries over a few hours, as Stripe's sandbox; the fast one is for tests.
    assert deliverer.max_attempts == 4
    assert [deliverer.retry_delay(n) for n in (1, 2, 3)] == [600, 3600, 10800]
    assert fast.max_attempts == 8 and fast.retry_delay(1) == 0.5


def test_the_emulator_waits_ten_minutes_before_the_first_retry(receiver: Receiver) -> None:
    receiver.statuses.extend([500] * 3)
    with running_emulator(
        forward_to=receiver.url, webhook_secret=SECRET, retry_schedule="stripe"
    ) as emulator:
        emulator.client().v1.products.create(params={"name": "Later"})
        wait_until(lambda: emulator.deliveries()[0]["attempts"])
        [delivery] = emulator.deliveries()

    attempt = delivery["attempts"][0]
    assert delivery["status"] == "pending" and len(receiver.requests) == 1
    assert 590 <= delivery["next_attempt_at"] - attempt["at"] <= 610
