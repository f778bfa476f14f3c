"""PaymentIntents (retrieve, list, cancel), Charges (retrieve, list), Refunds (create,
retrieve, list), Customers.

PaymentIntents, Charges and Customers are only created by paying a Checkout
Session (see paying.py); refunds are made through the API, and so is canceling a
PaymentIntent whose money has not come (a bank transfer that never arrived).
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
# What Stripe lets `POST /v1/payment_intents/{id}/cancel` cancel (processing "in rare
# cases": a bank transfer not yet arrived, here); any other status is refused.
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")


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
            (
                "POST",
                "/v1/payment_intents/{id}/cancel",
                lambda p, c, id: self.payment_intent_cancel(id, p, c),
            ),
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

    # canceling a PaymentIntent ----------------------------------------------------

    def payment_intent_cancel(self, intent_id: str, params: Params, ctx: RequestContext) -> Obj:
        """Cancel a PaymentIntent whose money has not come, as Stripe does.

        Only the statuses in CANCELABLE: a succeeded (or already canceled) one is refused with
        `payment_intent_unexpected_state`, and so is one whose Checkout Session is still open
        (Stripe wants the session expired instead). A bank transfer canceled on its way can
        no longer settle (`session_settle` wants a processing PaymentIntent).
        """
        with self.store.lock:
            check_known(params, ("cancellation_reason",))
            intent = self.get("payment_intents", intent_id)
            reason = params.get("cancellation_reason")
            if reason is not None and reason not in CANCELLATION_REASONS:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "Invalid cancellation_reason: must be one of abandoned, duplicate, "
                    "fraudulent, or requested_by_customer",
                    param="cancellation_reason",
                )
            if intent["status"] not in CANCELABLE:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "You cannot cancel this PaymentIntent because it has a status of "
                    f"{intent['status']}. Only a PaymentIntent with one of the following "
                    f"statuses may be canceled: {', '.join(CANCELABLE)}.",
                    code="payment_intent_unexpected_state",
                )
            open_sessions = self.store.find(
                "checkout_sessions",
                [("_payment_intent", "eq", intent_id), ("status", "eq", "open")],
                limit=1,
            )
            if open_sessions and intent["status"] != "requires_capture":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "You cannot cancel this PaymentIntent because it belongs to an open "
                    "Checkout Session. Expire the Checkout Session instead.",
                    code="payment_intent_unexpected_state",
                )
            intent.update(
                status="canceled",
                canceled_at=self.store.now(),
                cancellation_reason=reason,
            )
            self.store.put("payment_intents", intent)
            self.emit("payment_intent.canceled", intent, ctx)
            self.store.save()
            return self.render(intent, params.get("expand"))

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
