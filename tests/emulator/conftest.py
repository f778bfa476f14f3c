"""Fixtures for the emulator's own tests: a running emulator and a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from tests.support.emulator import Emulator, running_emulator

SECRET = "whsec_test_emulator_suite"


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint in the test process that records what it is sent.

    `statuses` is consumed one per request; when empty, the answer is 200.
    """

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.event for r in self.requests]

    def of_type(self, event_type: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.event["type"] == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    record = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with record.lock:
                record.requests.append(Received(body, dict(self.headers.items())))
                status = record.statuses.pop(0) if record.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator with webhook delivery off."""
    with running_emulator(webhook_secret=SECRET) as running:
        yield running


@pytest.fixture
def hooked(receiver: Receiver) -> Iterator[Emulator]:
    """An emulator delivering webhooks to `receiver`."""
    with running_emulator(forward_to=receiver.url, webhook_secret=SECRET) as running:
        yield running


@pytest.fixture
def stripe_client(emulator: Emulator) -> stripe.StripeClient:
    return emulator.client()


@pytest.fixture
def make_price(stripe_client: stripe.StripeClient) -> Any:
    """Create a one-time price (and its product) on the emulator."""

    def make(amount: int = 1500, currency: str = "usd", name: str = "Mug") -> stripe.Price:
        return stripe_client.v1.prices.create(
            params={"unit_amount": amount, "currency": currency, "product_data": {"name": name}}
        )

    return make
