"""Stripe's Checkout Sessions as far as checkout needs them, in memory, thread-safe:
create, retrieve, list, expire, and a shopper paying.

Idempotency as Stripe has it: the first answer to a key is kept, errors included, and every
later request with that key gets it again (an error replayed carries `Idempotent-Replayed:
true`); the same key with other parameters is an `idempotency_error`; a request while the
same key is running is a 409 (the SDK raises it as a plain APIError). `fail_next` makes the
next creates fail with a 500, before or after the session is made, as the emulator's faults do.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import stripe


def server_error(*, replayed: bool = False) -> stripe.APIError:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return stripe.APIError(
        "An unknown error occurred", http_status=500, headers=headers, code="api_error"
    )


def busy() -> stripe.APIError:
    """What the SDK raises once its retries of a 409 (the key still running) are used up."""
    return stripe.APIError(
        "There is currently another in-progress request using this Idempotent Key",
        http_status=409,
    )


class FakeCheckout:
    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        # key -> (the request's parameters, the first answer: a session or an error)
        self.by_key: dict[str, tuple[str, dict[str, Any] | Exception]] = {}
        self.keys: list[str] = []  # every create's key, in order (replays too)
        self.faults: list[str] = []  # "after", "before" or "busy", for the next creates
        self.lock = threading.Lock()
        self.clock = time.time

    def fail_next(self, when: str = "after", count: int = 1) -> None:
        """The next `count` creates fail: "after" (the session is made, the answer a 500),
        "before" (a 500, nothing made), "busy" (a 409, nothing stored), or "lost" (the session
        is made and its answer stored, but it never reaches the caller: a timeout)."""
        self.faults.extend([when] * count)

    def create(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            key = kwargs["idempotency_key"]
            self.keys.append(key)
            params = json.dumps({k: v for k, v in kwargs.items() if k != "idempotency_key"})
            if key in self.by_key:
                first_params, answer = self.by_key[key]
                if first_params != params:
                    raise stripe.IdempotencyError(
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                        http_status=400,
                    )
                if isinstance(answer, Exception):
                    raise server_error(replayed=True)
                return dict(answer)
            fault = self.faults.pop(0) if self.faults else ""
            if fault == "busy":
                raise busy()
            if fault == "before":
                self.by_key[key] = (params, server_error())
                raise server_error()
            session = self._new_session(kwargs)
            if fault == "after":
                self.by_key[key] = (params, server_error())
                raise server_error()
            self.by_key[key] = (params, dict(session))
            if fault == "lost":
                raise stripe.APIConnectionError("Request timed out")
            return dict(session)

    def _new_session(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        order_id = kwargs["order_id"]
        session_id = f"cs_test_fake{order_id}"
        if session_id in self.sessions:  # a second session for an order, or a reset database
            session_id += f"_{len(self.sessions)}"
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "created": int(self.clock()),
            "expires_at": kwargs["expires_at"],
            "url": f"https://checkout.example/{order_id}",
            "status": "open",
            "payment_status": "unpaid",
            "client_reference_id": str(order_id),
            "metadata": {"order_id": str(order_id), "order_token": kwargs["order_token"]},
            "currency": "usd",
            "amount_total": 0,
            "payment_intent": None,
            "customer_details": None,
        }
        self.sessions[session_id] = session
        return session

    def retrieve(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            if session_id not in self.sessions:
                raise stripe.InvalidRequestError(f"No such checkout.session: {session_id}", "id")
            return dict(self.sessions[session_id])

    def since(self, created_gte: int) -> Iterator[dict[str, Any]]:
        with self.lock:
            listed = [dict(s) for s in self.sessions.values() if s["created"] >= created_gte]
        return iter(sorted(listed, key=lambda s: -s["created"]))

    def expire(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            session = self.sessions[session_id]
            if session["status"] != "open":
                raise stripe.InvalidRequestError("Only open sessions can be expired.", "session")
            session["status"] = "expired"
            session["url"] = None
            return dict(session)

    def pay(self, session_id: str) -> None:
        with self.lock:
            session = self.sessions[session_id]
            session.update(
                status="complete",
                payment_status="paid",
                url=None,
                payment_intent=f"pi_{session_id}",
                customer_details={"email": "payer@example.com"},
            )

    def open_sessions(self, order_id: int) -> list[str]:
        """The payable sessions Stripe has for this order."""
        with self.lock:
            return [
                s["id"]
                for s in self.sessions.values()
                if s["client_reference_id"] == str(order_id) and s["status"] == "open"
            ]

    @property
    def created(self) -> int:
        return len(self.sessions)

    @contextmanager
    def patched(self) -> Iterator[mock.MagicMock]:
        with (
            mock.patch(
                "payments.stripe_api.checkout_session_create", side_effect=self.create
            ) as create,
            mock.patch("payments.stripe_api.checkout_session_retrieve", side_effect=self.retrieve),
            mock.patch("payments.stripe_api.checkout_session_expire", side_effect=self.expire),
            mock.patch("payments.stripe_api.checkout_sessions_since", side_effect=self.since),
        ):
            yield create
