"""PaymentIntents and Charges (retrieve, list), Refunds (create, retrieve, list), Customers.

PaymentIntents, Charges and Customers are only created by paying a Checkout
Session (see paying.py); refunds are made through the API.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from stripe_emulator import payment_objects
from stripe_emulator.events import Events
from stripe_emulator.listing import Resource, Route
from stripe_emulator.objects import public
from stripe_emulator.params import (
    ApiError,
    Obj,
    Params,
    RequestContext,
    apply_metadata,
    changed,
    check_known,
    format_amount,
    missing,
    to_int,
    to_str,
)
from stripe_emulator.store import Store, new_id

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class Payments(Resource):
    def __init__(self, store: Store, events: Events) -> None:
        super().__init__(store)
        self.emit = events.emit

    def routes(self) -> list[Route]:
        def lister(collection: str, *keys: str) -> Callable[..., Any]:
            return lambda p, c: self.list_by(collection, keys, p)

        def getter(collection: str) -> Callable[..., Any]:
            return lambda p, c, id: self.retrieve(collection, id, p)

        return [
            ("GET", "/v1/payment_intents", lister("payment_intents")),
            ("GET", "/v1/payment_intents/{id}", getter("payment_intents")),
            ("GET", "/v1/charges", lister("charges", "payment_intent")),
            ("GET", "/v1/charges/{id}", getter("charges")),
            ("POST", "/v1/refunds", lambda p, c: self.refund_create(p, c)),
            ("GET", "/v1/refunds", lister("refunds", "payment_intent", "charge")),
            ("GET", "/v1/refunds/{id}", getter("refunds")),
            ("GET", "/v1/customers/{id}", getter("customers")),
        ]

    def list_by(self, collection: str, keys: tuple[str, ...], params: Params) -> Obj:
        """A list filtered by equality on `keys` (and `created`), newest first."""
        with self.store.lock:
            filters = self.list_filters(params, keys)
            filters += [(key, "eq", params[key]) for key in keys if key in params]
            return self.paginate(collection, filters, params, f"/v1/{collection}")

    # refunds ------------------------------------------------------------------

    def refund_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, ("payment_intent", "charge", "amount", "reason", "metadata"))
            charge = self._refund_charge(params)
            remaining = int(charge["amount"]) - int(charge["amount_refunded"])
            if remaining <= 0:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Charge {charge['id']} has already been refunded.",
                    code="charge_already_refunded",
                )
            amount = remaining
            if "amount" in params:
                amount = to_int(params["amount"], "amount", minimum=1)
            if amount > remaining:
                currency = charge["currency"]
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Refund amount ({format_amount(amount, currency)}) is greater than "
                    f"unrefunded amount on charge ({format_amount(remaining, currency)})",
                    param="amount",
                )
            reason = params.get("reason")
            if reason is not None and reason not in REFUND_REASONS:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "Invalid reason: must be one of duplicate, fraudulent, or "
                    "requested_by_customer",
                    param="reason",
                )
            refund = payment_objects.refund(
                now=self.store.now(),
                amount=amount,
                charge_obj=charge,
                reason=reason,
                metadata=apply_metadata({}, params.get("metadata", {})),
            )
            before = copy.deepcopy(charge)
            charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            charge["refunds"]["data"].insert(0, public(refund))
            charge["refunds"]["total_count"] = len(charge["refunds"]["data"])
            self.store.put("refunds", refund)
            self.store.put("charges", charge)
            self.emit("refund.created", refund, ctx)
            self.emit("charge.refunded", charge, ctx, changed(before, charge))
            # Then the network's reference for the refund arrives (at Stripe, a little later).
            before_refund = copy.deepcopy(refund)
            destination = refund["destination_details"]
            destination[destination["type"]].update(
                reference=new_id("", 12).upper(), reference_status="available"
            )
            charge["refunds"]["data"][0] = public(refund)
            self.store.put("refunds", refund)
            self.store.put("charges", charge)
            self.emit("refund.updated", refund, ctx, changed(before_refund, refund))
            self.store.save()
            return self.render(refund, params.get("expand"))

    def _refund_charge(self, params: Params) -> Obj:
        if params.get("charge"):
            return self.get("charges", to_str(params["charge"], "charge"), "charge")
        if not params.get("payment_intent"):
            raise missing("payment_intent")
        intent = self.get(
            "payment_intents", to_str(params["payment_intent"], "payment_intent"), "payment_intent"
        )
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "This PaymentIntent does not have a successful charge to refund.",
                param="payment_intent",
            )
        return self.get("charges", intent["latest_charge"], "payment_intent")
