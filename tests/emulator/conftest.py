"""Fixtures for the emulator's own tests: a running emulator and a webhook receiver.

Also the Stripe contract check of the whole run: while tests run, every emulator
they start appends each /v1 request it gets to one JSONL file
(`STRIPE_EMULATOR_RECORD`, inherited by the emulator processes); when the session
ends, each request is replayed through the stripe SDK's parameter types, and an
unknown or mistyped parameter fails the run, naming the endpoint and parameters.
The emulator refuses such a request at once too, but the app may catch the
error and carry on (it logs a failed expiry, for one): this makes it a failure.
The emulator's own tests send bad requests on purpose and are not recorded.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe

from stripe_emulator.schema import check_recording
from tests.support.emulator import RECORD_ENV, Emulator, running_emulator

SECRET = "whsec_test_emulator_suite"


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(RECORD_ENV):
        handle, name = tempfile.mkstemp(prefix="stripe-requests-", suffix=".jsonl")
        os.close(handle)
        os.environ[RECORD_ENV] = name
        config.stash[_OWN_RECORDING] = Path(name)


_OWN_RECORDING = pytest.StashKey[Path]()
_PROBLEMS = pytest.StashKey[list[str]]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    recording = Path(os.environ.get(RECORD_ENV, ""))
    if not recording.is_file():
        return
    problems = check_recording(recording)
    session.config.stash[_PROBLEMS] = problems
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if session.config.stash.get(_OWN_RECORDING, None) == recording:
        recording.unlink()
        del os.environ[RECORD_ENV]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    problems = terminalreporter.config.stash.get(_PROBLEMS, [])
    if problems:
        terminalreporter.write_sep("=", "Stripe contract: requests Stripe would refuse", red=True)
        for problem in problems:
            terminalreporter.write_line(problem)


@pytest.fixture(autouse=True, scope="module")
def _not_recorded() -> Iterator[None]:
    """These tests send bad requests on purpose: keep them out of the contract check."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(RECORD_ENV, raising=False)
        yield


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
