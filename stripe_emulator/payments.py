"""PaymentIntents (retrieve, list, cancel), Charges (retrieve, list), Customers.

PaymentIntents and Charges are made by paying a Checkout Session (paying.py) or
by creating a PaymentIntent with a test PaymentMethod (intents.py); Customers only
by Checkout. Refunds are refunds.py, disputes disputes.py.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from stripe_emulator.events import Events
from stripe_emulator.listing import Resource, Route
from stripe_emulator.params import (
    ApiError,
    Obj,
    Params,
    RequestContext,
    check_known,
)
from stripe_emulator.store import Store

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
            # "You can directly cancel the PaymentIntent for a Checkout Session only when the
            # PaymentIntent has a status of requires_capture. Otherwise, you must expire the
            # Checkout Session." (the SDK's PaymentIntentService.cancel): open or complete.
            sessions = self.store.find(
                "checkout_sessions", [("_payment_intent", "eq", intent_id)], limit=1
            )
            if sessions and intent["status"] != "requires_capture":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "You cannot cancel this PaymentIntent because it belongs to a Checkout "
                    f"Session ({sessions[0]['id']}): only a PaymentIntent with a status of "
                    "requires_capture can be canceled directly. Expire the Checkout Session "
                    "instead.",
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
