"""Stripe's Checkout Sessions as far as checkout needs them, in memory, thread-safe:
create (idempotent per key, as Stripe is), retrieve, expire, and a shopper paying."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import stripe


class FakeCheckout:
    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def create(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            key = kwargs["idempotency_key"]
            if key not in self.by_key:  # Stripe answers a repeated key with the first answer
                order_id = kwargs["order_id"]
                session_id = f"cs_test_fake{order_id}"
                if session_id in self.sessions:  # an order id met again (a reset database)
                    session_id += f"_{len(self.sessions)}"
                session: dict[str, Any] = {
                    "id": session_id,
                    "object": "checkout.session",
                    "url": f"https://checkout.example/{order_id}",
                    "status": "open",
                    "payment_status": "unpaid",
                    "client_reference_id": str(order_id),
                    "metadata": {"order_id": str(order_id)},
                    "currency": "usd",
                    "amount_total": 0,
                    "payment_intent": None,
                    "customer_details": None,
                }
                self.sessions[session["id"]] = session
                self.by_key[key] = dict(session)
            return dict(self.by_key[key])

    def retrieve(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            if session_id not in self.sessions:
                raise stripe.InvalidRequestError(f"No such checkout.session: {session_id}", "id")
            return dict(self.sessions[session_id])

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
        ):
            yield create
