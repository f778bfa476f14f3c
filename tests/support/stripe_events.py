"""Real-shaped Stripe events for tests, signed exactly as Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import Client

# Stripe's reference data, kept in the repository (SOURCES.md there says where from).
STRIPE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"
EVENTS = STRIPE_FIXTURES / "events"
_ids = itertools.count(1)


def sign(payload: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
    """`Stripe-Signature` value: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": f"evt_test_{next(_ids):06d}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()) if created is None else created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def product(stripe_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "product",
        "active": True,
        "name": "Product",
        "description": None,
        "images": [],
        "metadata": {},
        "default_price": None,
        "created": 1_700_000_000,
        "updated": 1_700_000_000,
        "livemode": False,
    } | fields


def price(stripe_id: str, product_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": stripe_id,
        "object": "price",
        "active": True,
        "currency": "usd",
        "product": product_id,
        "unit_amount": 1500,
        "type": "one_time",
        "lookup_key": None,
        "recurring": None,
        "created": 1_700_000_000,
        "livemode": False,
        "metadata": {},
    } | fields


def load_shared(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class WebhookPoster:
    def __init__(self, client: Client) -> None:
        self.client = client

    def post(self, payload: dict[str, Any] | bytes, **sign_kwargs: Any):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.client.post(
            "/stripe/webhook/",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": sign(body, **sign_kwargs)},
        )
