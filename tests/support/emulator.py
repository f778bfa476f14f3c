"""Run the Stripe emulator as a subprocess for a test suite.

    with running_emulator(forward_to=url, webhook_secret="whsec_test") as emulator:
        client = emulator.client()          # stripe.StripeClient bound to it
        session = client.v1.checkout.sessions.create(...)
        emulator.pay(session.id)            # as a shopper paying on the hosted page
        emulator.flush()                    # wait for webhook deliveries

Only the standard library is used here (the `client()` helper imports stripe
lazily), so any test suite can use it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_emulator"
# Set, every emulator started here appends each /v1 request to this JSONL file (the
# emulator's `--record`); tests/emulator/conftest.py checks it when the run ends.
RECORD_ENV = "STRIPE_EMULATOR_RECORD"


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.02, message: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A deliverable address in the app's default SHIPPING_COUNTRIES.
SHIPPING_ADDRESS = {
    "shipping_name": "Kim Buyer",
    "shipping_line1": "1 Market Street",
    "shipping_city": "San Francisco",
    "shipping_postal_code": "94105",
    "shipping_country": "US",
}


@dataclass
class Emulator:
    """A running emulator process and helpers to drive it."""

    api_base: str
    webhook_secret: str
    data_file: Path
    process: subprocess.Popen[bytes]
    api_key: str = API_KEY
    args: list[str] = field(default_factory=list)
    log_file: Path | None = None

    def request(
        self, method: str, path: str, data: dict[str, str] | None = None, timeout: float = 15
    ) -> tuple[int, Any]:
        """Call the emulator over HTTP; returns (status, parsed JSON or text)."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.api_base + path, data=body, method=method)
        if path.startswith("/v1/"):
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()

    def pay(
        self,
        session_id: str,
        card: str = "4242424242424242",
        email: str = "buyer@example.com",
        method: str = "card",
        **fields: str,
    ) -> dict[str, Any]:
        """Pay as the hosted page would; the answer has `paid`, `session`, maybe `error`.

        `method="bank_transfer"` pays by a bank transfer that settles later: the session
        completes with `payment_status` "unpaid" until `settle()`.

        `fields` are the page's other fields: `shipping_name`, `shipping_line1`,
        `shipping_city`, `shipping_postal_code`, `shipping_country` (SHIPPING_ADDRESS by
        default; ignored by a session that collects no address), `shipping_rate`,
        `promotion_code`, and `shown_total` (the total the page showed, in minor units: a
        payment that would charge another is refused with `amount_changed`, as the page
        does; left out, nothing is compared). A session whose total is 0 completes with
        `payment_status` "no_payment_required" whatever the card.
        """
        _, result = self.request(
            "POST",
            f"/_emulator/sessions/{session_id}/pay",
            {"card": card, "email": email, "method": method, **SHIPPING_ADDRESS, **fields},
        )
        return result

    def settle(self, session_id: str, *, succeeded: bool = True) -> dict[str, Any]:
        """The bank transfer a session was paid by arrives (or bounces); returns the session.

        Fires `checkout.session.async_payment_succeeded` (or `..._failed`), after the
        charge's and the PaymentIntent's events, as Stripe does.
        """
        outcome = "succeeded" if succeeded else "failed"
        status, result = self.request(
            "POST", f"/_emulator/sessions/{session_id}/settle", {"outcome": outcome}
        )
        assert status == 200, result
        return result["session"]

    def flush(self, timeout: float = 10) -> dict[str, Any]:
        """Block until every pending webhook delivery is done (or failed)."""
        _, result = self.request("POST", f"/_emulator/flush?timeout={timeout}", {})
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        _, result = self.request("GET", "/_emulator/deliveries")
        return result["data"]

    def advance_clock(self, seconds: int) -> dict[str, Any]:
        """Move the emulator's clock forward (expires sessions that fall due)."""
        _, result = self.request("POST", f"/_emulator/clock/advance?seconds={seconds}", {})
        return result

    def fail_next(
        self, path: str, *, when: str = "after", count: int = 1, method: str = "POST"
    ) -> None:
        """The next `count` requests to `path` (`/v1/refunds`, or a route such as
        `/v1/payment_intents/{id}/cancel`) answer a 500: `when="after"` the endpoint did its
        work (objects made, events sent), `when="before"` it did nothing. Under an
        idempotency key the 500 is stored and replayed, as at Stripe."""
        status, result = self.request(
            "POST",
            "/_emulator/faults",
            {"path": path, "when": when, "count": str(count), "method": method},
        )
        assert status == 200, result

    def delay_next(
        self, path: str, seconds: float, *, count: int = 1, method: str = "POST"
    ) -> None:
        """The next `count` requests to `path` wait `seconds` before they run (to race two
        requests with one idempotency key: the second gets a 409)."""
        status, result = self.request(
            "POST",
            "/_emulator/faults",
            {
                "path": path,
                "when": "delay",
                "seconds": str(seconds),
                "count": str(count),
                "method": method,
            },
        )
        assert status == 200, result

    def transition_refund(
        self, refund_id: str, to: str, *, failure_reason: str | None = None
    ) -> dict[str, Any]:
        """Move a refund on as the bank would (`pending` -> `requires_action`, `succeeded`,
        `failed`; `requires_action` -> `pending`, `succeeded`, `failed`, `canceled`;
        `succeeded` -> `failed`); returns the refund."""
        data = {"to": to, **({"failure_reason": failure_reason} if failure_reason else {})}
        status, result = self.request("POST", f"/_emulator/refunds/{refund_id}/transition", data)
        assert status == 200, result
        return result["refund"]

    def open_dispute(
        self, charge_id: str, *, reason: str = "fraudulent", inquiry: bool = False
    ) -> dict[str, Any]:
        """The cardholder disputes a charge (a chargeback, or an inquiry); returns it."""
        status, result = self.request(
            "POST",
            f"/_emulator/charges/{charge_id}/dispute",
            {"reason": reason, "inquiry": "true" if inquiry else "false"},
        )
        assert status == 200, result
        return result["dispute"]

    def decide_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        """The bank decides a dispute; returns it."""
        outcome = "won" if won else "lost"
        status, result = self.request(
            "POST", f"/_emulator/disputes/{dispute_id}/decide", {"outcome": outcome}
        )
        assert status == 200, result
        return result["dispute"]

    def clear_faults(self) -> None:
        self.request("POST", "/_emulator/faults/clear", {})

    def client(self) -> Any:
        """A `stripe.StripeClient` talking to this emulator."""
        import stripe

        return stripe.StripeClient(self.api_key, base_addresses={"api": self.api_base})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port and data file."""
        self.stop()
        self.process = _spawn(self.args, self.log_file)
        _wait_healthy(self)

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file and self.log_file.exists() else ""


def _spawn(args: list[str], log_file: Path | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    # The log goes to a file: an unread pipe would fill up and block the server.
    log = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "stripe_emulator", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        if not isinstance(log, int):  # a file we opened, not subprocess.DEVNULL
            log.close()


def _wait_healthy(emulator: Emulator, timeout: float = 10.0) -> None:
    def healthy() -> bool:
        if emulator.process.poll() is not None:
            raise RuntimeError(f"emulator exited early:\n{emulator.log()}")
        try:
            with urllib.request.urlopen(emulator.api_base + "/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(healthy, timeout=timeout, message=f"emulator not healthy:\n{emulator.log()}")


@contextmanager
def running_emulator(
    *,
    forward_to: str = "",
    webhook_secret: str = "whsec_test",
    chaos: bool = False,
    data_file: Path | None = None,
    retry_base: float = 0.05,
    max_attempts: int = 5,
    retry_schedule: str = "fast",
    chaos_seed: int = 0,
    drop: float = 0.0,
) -> Iterator[Emulator]:
    """Start `python -m stripe_emulator` on a free 127.0.0.1 port, wait for /healthz,
    yield, terminate it. Without `data_file` the state lives in a temporary file."""
    with tempfile.TemporaryDirectory(prefix="stripe-emulator-") as tmp:
        data = data_file or Path(tmp) / "state.sqlite3"
        port = free_port()
        args = [
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--forward-to",
            forward_to,
            "--webhook-secret",
            webhook_secret,
            "--data",
            str(data),
            # Stripe's test-mode schedule retries over hours: tests take the fast one.
            "--retry-schedule",
            retry_schedule,
            "--retry-base",
            str(retry_base),
            "--max-attempts",
            str(max_attempts),
            "--chaos-seed",
            str(chaos_seed),
            "--quiet",
        ]
        if chaos:
            args.append("--chaos")
        if drop:
            args += ["--drop", str(drop)]
        log_file = Path(tmp) / "emulator.log"
        emulator = Emulator(
            api_base=f"http://127.0.0.1:{port}",
            webhook_secret=webhook_secret,
            data_file=data,
            process=_spawn(args, log_file),
            args=args,
            log_file=log_file,
        )
        try:
            _wait_healthy(emulator)
            yield emulator
        finally:
            emulator.stop()
