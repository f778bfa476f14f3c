"""Stripe's refunds and disputes of payments, in memory, as Stripe keeps them, patched in at
payments/stripe_api.py: for unit tests of refunds, disputes, the periodic look and the books.

As at Stripe: the first answer to an idempotency key is kept and replayed, errors included
(a 5xx once the endpoint started, a refusal); the same key with other parameters is an
IdempotencyError; a refund of more than is left on the payment is refused
(`charge_already_refunded`); lists are newest first. Faults for the next create:
- "lose": the refund is made, the answer never arrives (APIConnectionError, after the SDK's
  retries, which Stripe answered with the same refund);
- "unavailable": a 503 before anything happened (nothing kept for the key);
- "error": a 500 after the endpoint started: nothing made, the error kept for the key;
- "busy": a 409, the key in use by a request still running (nothing kept);
- "refuse": Stripe refuses it (InvalidRequestError, kept for the key).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import stripe

_ids = itertools.count(1)


class FakeStripeMoney:
    def __init__(self) -> None:
        self.charged: dict[str, int] = {}  # payment intent -> amount charged
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self.faults: list[str] = []
        self.status = "succeeded"  # what a new refund starts as
        self.creates: list[dict[str, Any]] = []  # every create request that reached Stripe

    # -- what tests arrange ---------------------------------------------------------------

    def pay(self, payment_intent: str, amount: int, **fields: Any) -> dict[str, Any]:
        self.charged[payment_intent] = amount
        charge: dict[str, Any] = {
            "id": f"ch_{payment_intent}",
            "object": "charge",
            "payment_intent": payment_intent,
            "amount": amount,
            "currency": "usd",
            "paid": True,
            "status": "succeeded",
            "livemode": False,
            "created": int(time.time()),
        } | fields
        self.charges[charge["id"]] = charge
        return charge

    def refund(self, payment_intent: str, amount: int, **fields: Any) -> dict[str, Any]:
        """A refund made elsewhere (Stripe's dashboard)."""
        return self._make(payment_intent, amount, metadata={}, **fields)

    def set_refund(self, refund_id: str, **fields: Any) -> dict[str, Any]:
        self.refunds[refund_id].update(fields)
        return dict(self.refunds[refund_id])

    def dispute(self, payment_intent: str, amount: int, **fields: Any) -> dict[str, Any]:
        dispute: dict[str, Any] = {
            "id": f"dp_test_{next(_ids)}",
            "object": "dispute",
            "amount": amount,
            "currency": "usd",
            "charge": f"ch_{payment_intent}",
            "payment_intent": payment_intent,
            "status": "needs_response",
            "reason": "fraudulent",
            "created": int(time.time()),
            "evidence_details": {"due_by": int(time.time()) + 7 * 86400},
            "livemode": False,
        } | fields
        self.disputes[dispute["id"]] = dispute
        return dict(dispute)

    def set_dispute(self, dispute_id: str, **fields: Any) -> dict[str, Any]:
        self.disputes[dispute_id].update(fields)
        return dict(self.disputes[dispute_id])

    # -- the stripe_api functions ---------------------------------------------------------

    def refund_create(
        self,
        *,
        payment_intent: str,
        order_id: int,
        idempotency_key: str,
        amount: int | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        params = (payment_intent, amount, reason, tuple(sorted((metadata or {}).items())))
        if idempotency_key in self.keys:
            kept_params, kept = self.keys[idempotency_key]
            if kept_params != params:
                raise stripe.IdempotencyError(
                    "Keys for idempotent requests can only be used "
                    "with the same parameters they were first used with."
                )
            if isinstance(kept, Exception):
                raise kept
            return dict(kept)
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "unavailable":
            raise stripe.APIError("Service unavailable", http_status=503)
        if fault == "busy":
            raise stripe.APIError("Another request with this key is in progress", http_status=409)
        self.creates.append({"key": idempotency_key, "amount": amount, "metadata": metadata})
        answer: Any
        if fault == "error":
            answer = stripe.APIError("An unexpected error occurred", http_status=500)
        elif fault == "refuse":
            answer = stripe.InvalidRequestError("Your card was declined.", "payment_intent")
        else:
            left = self.charged.get(payment_intent, 0) - self.refunded(payment_intent)
            wanted = left if amount is None else amount
            if wanted > left or left <= 0:
                answer = stripe.InvalidRequestError(
                    f"Charge {payment_intent} has already been refunded.",
                    "amount",
                    code="charge_already_refunded",
                )
            else:
                answer = self._make(payment_intent, wanted, metadata=dict(metadata or {}))
        self.keys[idempotency_key] = (params, answer)
        if isinstance(answer, Exception):
            raise answer
        if fault == "lose":
            raise stripe.APIConnectionError("Connection aborted (the answer was lost)")
        return dict(answer)

    def refunded(self, payment_intent: str) -> int:
        return sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == payment_intent and r["status"] not in ("failed", "canceled")
        )

    def refund_retrieve(self, refund_id: str) -> dict[str, Any]:
        if refund_id not in self.refunds:
            raise stripe.InvalidRequestError(
                f"No such refund: '{refund_id}'", "id", code="resource_missing"
            )
        return dict(self.refunds[refund_id])

    def refunds_of_payment(self, payment_intent: str) -> list[dict[str, Any]]:
        mine = [dict(r) for r in self.refunds.values() if r["payment_intent"] == payment_intent]
        return sorted(mine, key=lambda r: r["n"], reverse=True)

    def dispute_retrieve(self, dispute_id: str) -> dict[str, Any]:
        if dispute_id not in self.disputes:
            raise stripe.InvalidRequestError(
                f"No such dispute: '{dispute_id}'", "id", code="resource_missing"
            )
        return dict(self.disputes[dispute_id])

    def disputes_of_payment(self, payment_intent: str) -> list[dict[str, Any]]:
        return [dict(d) for d in self.disputes.values() if d["payment_intent"] == payment_intent]

    def charge_retrieve(self, charge_id: str) -> dict[str, Any]:
        payment_intent = charge_id.removeprefix("ch_")
        return {
            "id": charge_id,
            "object": "charge",
            "payment_intent": payment_intent,
            "amount": self.charged.get(payment_intent, 0),
            "amount_refunded": self.refunded(payment_intent),
        }

    def charges_created(self, *, gte: int, lt: int) -> Iterator[dict[str, Any]]:
        return iter(_made_in(self.charges.values(), gte, lt))

    def refunds_created(self, *, gte: int, lt: int) -> Iterator[dict[str, Any]]:
        return iter(_made_in(self.refunds.values(), gte, lt))

    def disputes_created(self, *, gte: int, lt: int) -> Iterator[dict[str, Any]]:
        return iter(_made_in(self.disputes.values(), gte, lt))

    def payment_intent_retrieve(self, payment_intent: str) -> dict[str, Any]:
        charge = self.charges.get(f"ch_{payment_intent}")
        if charge is None:
            raise stripe.InvalidRequestError(
                f"No such payment_intent: '{payment_intent}'", "id", code="resource_missing"
            )
        return {
            "id": payment_intent,
            "object": "payment_intent",
            "amount_received": charge["amount"],
        }

    def _make(
        self, payment_intent: str, amount: int, *, metadata: dict[str, str], **fields: Any
    ) -> dict[str, Any]:
        n = next(_ids)
        refund: dict[str, Any] = {
            "id": f"re_test_{n}",
            "object": "refund",
            "n": n,
            "amount": amount,
            "currency": "usd",
            "charge": f"ch_{payment_intent}",
            "payment_intent": payment_intent,
            "status": self.status,
            "reason": None,
            "metadata": metadata,
            "failure_reason": None,
            "created": int(time.time()),
        } | fields
        self.refunds[refund["id"]] = refund
        return refund


def _made_in(objects: Any, gte: int, lt: int) -> list[dict[str, Any]]:
    made = [dict(o) for o in objects if gte <= o["created"] < lt]
    return sorted(made, key=lambda o: o["created"], reverse=True)


@contextmanager
def stripe_money() -> Iterator[FakeStripeMoney]:
    fake = FakeStripeMoney()
    with mock.patch.multiple(
        "payments.stripe_api",
        refund_create=mock.Mock(side_effect=fake.refund_create),
        refund_retrieve=mock.Mock(side_effect=fake.refund_retrieve),
        refunds_of_payment=mock.Mock(side_effect=fake.refunds_of_payment),
        dispute_retrieve=mock.Mock(side_effect=fake.dispute_retrieve),
        disputes_of_payment=mock.Mock(side_effect=fake.disputes_of_payment),
        charge_retrieve=mock.Mock(side_effect=fake.charge_retrieve),
        charges_created=mock.Mock(side_effect=fake.charges_created),
        refunds_created=mock.Mock(side_effect=fake.refunds_created),
        disputes_created=mock.Mock(side_effect=fake.disputes_created),
        payment_intent_retrieve=mock.Mock(side_effect=fake.payment_intent_retrieve),
    ):
        yield fake
