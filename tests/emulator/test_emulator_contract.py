"""The contract check: recorded requests replayed through the SDK's parameter types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stripe_emulator import schema
from tests.support.emulator import RECORD_ENV, running_emulator


def test_the_emulator_records_every_api_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = tmp_path / "requests.jsonl"
    monkeypatch.setenv(RECORD_ENV, str(recording))
    with running_emulator() as emulator:
        client = emulator.client()
        product = client.v1.products.create(params={"name": "Jug", "metadata": {"k": "v"}})
        client.v1.products.retrieve(product.id)
        status, _ = emulator.request("POST", "/v1/products", {"name": "x", "colour": "red"})

    entries = [json.loads(line) for line in recording.read_text().splitlines()]

    assert status == 400
    assert [(e["method"], e["endpoint"], e["status"]) for e in entries] == [
        ("POST", "/v1/products", 200),
        ("GET", "/v1/products/{id}", 200),
        ("POST", "/v1/products", 400),
    ]
    assert entries[0]["params"] == {"name": "Jug", "metadata": {"k": "v"}}
    assert entries[1]["path"] == f"/v1/products/{product.id}"


def test_a_request_stripe_would_refuse_is_named(tmp_path: Path) -> None:
    recording = tmp_path / "requests.jsonl"
    lines = [
        ("POST", "/v1/products", {"name": "ok"}),
        ("POST", "/v1/refunds", {"amount": "all"}),
        ("POST", "/v1/products", {"name": "x", "colour": "red"}),
        ("POST", "/v1/products", {"name": "x", "colour": "red"}),  # reported once
        ("GET", None, {}),
    ]
    recording.write_text(
        "".join(
            json.dumps(
                {"method": m, "endpoint": e, "path": e or "/v1/nothing", "params": p, "status": 200}
            )
            + "\n"
            for m, e, p in lines
        )
    )

    problems = schema.check_recording(recording)

    assert problems == [
        "POST /v1/refunds {'amount': 'all'}: parameter_invalid_integer amount: "
        "Invalid integer: all",
        "POST /v1/products {'name': 'x', 'colour': 'red'}: parameter_unknown colour: "
        "Received unknown parameter: colour",
        f"GET /v1/nothing {{}}: not an endpoint of stripe {schema.stripe.VERSION}",
    ]
    assert schema.main([str(recording)]) == 1
