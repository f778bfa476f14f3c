"""Where the contract tests (tests/contract/) run: the emulator, or Stripe's test mode.

    STRIPE_CONTRACT_TARGET=stripe STRIPE_SECRET_KEY=sk_test_... pytest tests/contract
                                                    (`make test-stripe`)
    pytest tests/contract                           (the emulator; part of the suite)

The same tests run against both through a `Target`: a `stripe.StripeClient` for the
API base, plus what differs:

- time: `later(seconds)` moves the emulator's clock; at Stripe the time passes by
  itself, and `wait_for` polls with a generous bound either way;
- steps only the emulator can take (paying its hosted page through the test
  endpoint, injecting a fault): `emulator_only(reason)` skips them at Stripe;
- cleanup: what a test makes is registered and, at the end, archived (products,
  prices, shipping rates, promotion codes), expired (open Checkout Sessions) or
  deleted (coupons); what cannot be removed (PaymentIntents, charges, refunds,
  disputes) carries `metadata[amazin_contract]` = the run's id, to be recognised.

Against Stripe a key that is not `sk_test_` is refused (the run stops), and without
a key every contract test is skipped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import stripe

from tests.support.emulator import Emulator

TARGET_ENV = "STRIPE_CONTRACT_TARGET"
TAG = "amazin_contract"
T = TypeVar("T")


def wants_stripe() -> bool:
    return os.environ.get(TARGET_ENV, "emulator") == "stripe"


def stripe_key() -> str | None:
    """The test-mode key for a run against Stripe; exits the run on a live key."""
    key = os.environ.get("STRIPE_SECRET_KEY", "")
    if not key:
        return None
    if not key.startswith("sk_test_"):
        pytest.exit(
            "make test-stripe runs against Stripe's test mode only: STRIPE_SECRET_KEY must "
            "start with sk_test_ (it creates and refunds payments).",
            returncode=2,
        )
    return key


@dataclass
class Target:
    client: stripe.StripeClient
    emulator: Emulator | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(6))
    made: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_stripe(self) -> bool:
        return self.emulator is None

    @property
    def tag(self) -> dict[str, str]:
        return {TAG: self.run_id}

    def emulator_only(self, reason: str) -> Emulator:
        if self.emulator is None:
            pytest.skip(f"emulator only: {reason}")
        return self.emulator

    def later(self, seconds: int) -> None:
        """Let `seconds` pass: the emulator's clock moves; at Stripe, time just passes."""
        if self.emulator is not None:
            self.emulator.advance_clock(seconds)

    def wait_for(
        self, probe: Callable[[], T | None], *, timeout: float = 180.0, what: str = ""
    ) -> T:
        """Poll until `probe` answers something truthy (Stripe does things "a bit later")."""
        deadline = time.monotonic() + timeout
        delay = 0.05 if self.emulator is not None else 2.0
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s: {what}")
            time.sleep(delay)

    def made_one(self, kind: str, obj: Any) -> Any:
        self.made.append((kind, obj.id))
        return obj

    def cleanup(self) -> None:
        v1 = self.client.v1
        undo: dict[str, Callable[[str], Any]] = {
            "product": lambda i: v1.products.update(i, params={"active": False}),
            "price": lambda i: v1.prices.update(i, params={"active": False}),
            "shipping_rate": lambda i: v1.shipping_rates.update(i, params={"active": False}),
            "promotion_code": lambda i: v1.promotion_codes.update(i, params={"active": False}),
            "coupon": lambda i: v1.coupons.delete(i),
            "session": lambda i: v1.checkout.sessions.expire(i),
        }
        for kind, obj_id in reversed(self.made):
            # Already archived, expired or complete: nothing left to undo.
            with contextlib.suppress(stripe.StripeError):
                undo[kind](obj_id)
        self.made.clear()

    # What most tests make --------------------------------------------------------

    def price(self, amount: int = 2000, **extra: Any) -> stripe.Price:
        product = self.made_one(
            "product",
            self.client.v1.products.create(params={"name": "Contract mug", "metadata": self.tag}),
        )
        params: Any = {
            "product": product.id,
            "unit_amount": amount,
            "currency": "usd",
            "metadata": self.tag,
            **extra,
        }
        return self.made_one("price", self.client.v1.prices.create(params=params))

    def session(self, **extra: Any) -> stripe.checkout.Session:
        params: Any = {
            "mode": "payment",
            "line_items": [{"price": self.price().id, "quantity": 1}],
            "success_url": "https://example.com/ok?session_id={CHECKOUT_SESSION_ID}",
            "metadata": self.tag,
            **extra,
        }
        return self.made_one("session", self.client.v1.checkout.sessions.create(params=params))

    def paid_intent(self, payment_method: str = "pm_card_visa", amount: int = 2000) -> Any:
        """A PaymentIntent paid at once with one of Stripe's test PaymentMethods."""
        params: Any = {
            "amount": amount,
            "currency": "usd",
            "payment_method": payment_method,
            "confirm": True,
            "allowed_payment_method_types": ["card"],
            "metadata": self.tag,
        }
        return self.client.v1.payment_intents.create(params=params)

    def events_about(self, obj_id: str, since: int, *types: str) -> list[Any]:
        """Events of `types` since `since` whose object is `obj_id`, oldest first."""
        params: Any = {"types": list(types), "created": {"gte": since}, "limit": 100}
        found = [
            e for e in self.client.v1.events.list(params=params).data if e.data.object.id == obj_id
        ]
        return list(reversed(found))
