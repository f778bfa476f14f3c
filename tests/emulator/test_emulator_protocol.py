"""Cross-cutting behaviour: idempotency keys, errors, persistence, object shapes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from stripe_emulator import objects
from stripe_emulator.forms import FormError, parse_form
from tests.support.emulator import REPO_ROOT, Emulator, running_emulator

pytestmark = pytest.mark.emulator

# Stripe's own sample objects, kept in the repository (see SOURCES.md there).
FIXTURES3 = Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "fixtures3.json"


def test_idempotent_replay_returns_the_same_object(
    emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    options: Any = {"idempotency_key": "create-tea"}

    first = stripe_client.v1.products.create(params={"name": "Tea"}, options=options)
    again = stripe_client.v1.products.create(params={"name": "Tea"}, options=options)
    listed = stripe_client.v1.products.list()

    assert again.id == first.id
    assert [p.id for p in listed.data] == [first.id]


def test_replay_is_byte_identical_and_flagged(emulator: Emulator) -> None:
    def post() -> requests.Response:
        return requests.post(
            f"{emulator.api_base}/v1/products",
            data={"name": "Tea"},
            headers={"Authorization": f"Bearer {emulator.api_key}", "Idempotency-Key": "k-1"},
            timeout=10,
        )

    first, second = post(), post()

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"


def test_idempotency_key_reused_with_other_params(stripe_client: stripe.StripeClient) -> None:
    options: Any = {"idempotency_key": "same-key"}
    stripe_client.v1.products.create(params={"name": "Tea"}, options=options)

    with pytest.raises(stripe.IdempotencyError) as excinfo:
        stripe_client.v1.products.create(params={"name": "Coffee"}, options=options)

    assert excinfo.value.http_status == 400
    assert len(stripe_client.v1.products.list().data) == 1


def test_authentication_errors(emulator: Emulator) -> None:
    wrong = stripe.StripeClient("sk_live_nope", base_addresses={"api": emulator.api_base})
    anonymous = requests.get(f"{emulator.api_base}/v1/products", timeout=10)

    with pytest.raises(stripe.AuthenticationError) as excinfo:
        wrong.v1.products.list()

    assert excinfo.value.http_status == 401
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"


def test_unknown_id_is_resource_missing(stripe_client: stripe.StripeClient) -> None:
    for call in (
        lambda: stripe_client.v1.products.retrieve("prod_missing"),
        lambda: stripe_client.v1.checkout.sessions.retrieve("cs_test_missing"),
        lambda: stripe_client.v1.events.retrieve("evt_missing"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            call()
        assert excinfo.value.http_status == 404
        assert excinfo.value.code == "resource_missing"
        assert "No such" in excinfo.value.user_message


def test_state_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "state.sqlite3"
    with running_emulator(data_file=data) as emulator:
        client = emulator.client()
        product = client.v1.products.create(params={"name": "Durable"})
        options: Any = {"idempotency_key": "durable"}
        price = client.v1.prices.create(
            params={"product": product.id, "unit_amount": 10, "currency": "usd"}, options=options
        )

        emulator.restart()
        again = client.v1.prices.create(
            params={"product": product.id, "unit_amount": 10, "currency": "usd"}, options=options
        )
        fetched = client.v1.products.retrieve(product.id)
        events = client.v1.events.list()

    assert fetched.name == "Durable"
    assert again.id == price.id
    assert [e.type for e in events.data] == ["price.created", "product.created"]
    with closing(sqlite3.connect(data)) as db:
        [(stored,)] = db.execute(
            "SELECT data FROM objects WHERE collection = 'products' AND id = ?", (product.id,)
        )
    assert json.loads(stored)["name"] == "Durable"


def test_event_list_filters(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(params={"name": "A"})
    stripe_client.v1.products.update(product.id, params={"name": "B", "description": "d"})
    stripe_client.v1.products.update(product.id, params={"name": "B"})  # no change, no event

    updated = stripe_client.v1.events.list(params={"type": "product.updated"})
    wildcard = stripe_client.v1.events.list(params={"type": "product.*"})
    created = updated.data[0].created
    later = stripe_client.v1.events.list(params={"created": {"gt": created}})

    assert len(updated.data) == 1
    previous, request = updated.data[0].data.previous_attributes, updated.data[0].request
    assert previous is not None
    assert previous.name == "A"
    assert previous.description is None
    assert request is not None and request.id is not None
    assert request.id.startswith("req_")
    assert len(wildcard.data) == 2
    assert later.data == []


def test_form_parser() -> None:
    parsed = parse_form(
        "line_items[1][price]=b&line_items[0][price]=a&line_items[0][quantity]=2"
        "&expand[]=x&expand[]=y&metadata[k]=v&name=n"
    )

    assert parsed == {
        "line_items": [{"price": "a", "quantity": "2"}, {"price": "b"}],
        "expand": ["x", "y"],
        "metadata": {"k": "v"},
        "name": "n",
    }
    with pytest.raises(FormError):
        parse_form("a[b=1")


# -- contract: every field Stripe's own sample has -----------------------------


def emulated_objects(emulator: Emulator) -> dict[str, dict[str, Any]]:
    """One of each object the emulator serves, as plain JSON."""
    client = emulator.client()
    product = client.v1.products.create(
        params={"name": "Mug", "default_price_data": {"unit_amount": 900, "currency": "usd"}}
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": product.default_price, "quantity": 1}],
            "success_url": "http://shop.test/ok",
        }
    )
    paid = emulator.pay(session.id)["session"]
    intent = client.v1.payment_intents.retrieve(paid["payment_intent"])
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    lonely = client.v1.products.create(params={"name": "Gone"})
    disputed = emulator.pay(
        client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [{"price": product.default_price, "quantity": 1}],
            }
        ).id,
        card="4000000000000259",
    )["session"]
    dispute = client.v1.disputes.list(params={"payment_intent": disputed["payment_intent"]}).data[0]
    return {
        "product": product.to_dict(),
        "price": client.v1.prices.retrieve(product.default_price).to_dict(),
        "checkout.session": client.v1.checkout.sessions.retrieve(session.id).to_dict(),
        "item": client.v1.checkout.sessions.line_items.list(session.id).data[0].to_dict(),
        "payment_intent": intent.to_dict(),
        # fixtures3 has `refunds` on the charge: since API 2022-11-15 only when expanded.
        "charge": client.v1.charges.retrieve(
            intent.latest_charge, params={"expand": ["refunds"]}
        ).to_dict(),
        "dispute": dispute.to_dict(),
        "refund": refund.to_dict(),
        "event": client.v1.events.list(params={"limit": 1}).data[0].to_dict(),
        "deleted_product": client.v1.products.delete(lonely.id).to_dict(),
    }


def test_objects_have_every_field_of_stripes_samples(emulator: Emulator) -> None:
    samples = json.loads(FIXTURES3.read_text())["resources"]

    emulated = emulated_objects(emulator)

    for name, obj in emulated.items():
        missing = set(samples[name]) - set(obj)
        assert not missing, f"{name} lacks {sorted(missing)}"
        assert obj["object"] == samples[name]["object"], name
        if "livemode" in obj:
            assert obj["livemode"] is False


def test_refused_post_does_not_poison_a_kept_alive_connection(emulator: Emulator) -> None:
    with requests.Session() as http:
        refused = http.post(f"{emulator.api_base}/v1/products", data={"name": "x" * 5000})
        health = http.get(f"{emulator.api_base}/healthz")

    assert refused.status_code == 401
    assert health.status_code == 200 and health.text == "ok"


def test_an_old_json_data_file_is_imported(tmp_path: Path) -> None:
    data = tmp_path / "state.json"
    old = objects.product(now=1_700_000_000, name="From JSON", id="prod_fromjson", _seq=7)
    data.write_text(
        json.dumps(
            {
                "products": {old["id"]: old},
                "seq": 7,
                "clock_offset": 0,
                "idempotency": {},
                "deliveries": {},
            }
        )
    )

    with running_emulator(data_file=data) as emulator:
        client = emulator.client()
        kept = client.v1.products.retrieve("prod_fromjson")
        newer = client.v1.products.create(params={"name": "After"})
        listed = client.v1.products.list()

    assert kept.name == "From JSON"
    assert [p.id for p in listed.data] == [newer.id, "prod_fromjson"]
    assert data.read_bytes().startswith(b"SQLite format 3\x00")
    assert json.loads((tmp_path / "state.json.legacy-json").read_text())["seq"] == 7


def test_a_data_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "notes.txt"
    data.write_text("my notes, not emulator state")

    done = subprocess.run(
        [sys.executable, "-m", "stripe_emulator", "--data", str(data), "--port", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 1
    assert "is not an emulator data file" in done.stderr
    assert data.read_text() == "my notes, not emulator state"
