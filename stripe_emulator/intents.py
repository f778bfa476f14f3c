"""Creating a PaymentIntent directly, paid at once with one of Stripe's test PaymentMethods.

    POST /v1/payment_intents  amount, currency, payment_method=pm_card_visa, confirm=true,
                              allowed_payment_method_types[]=card (or
                              automatic_payment_methods, or a return_url), metadata,
                              description, receipt_email

The same call makes a charge, a failing refund or a dispute at real Stripe in test
mode, so a test written against it runs against both (tests/contract/). The
PaymentMethod ids are Stripe's (cards.PAYMENT_METHODS): `pm_card_visa` pays,
`pm_card_chargeDeclined` is declined (402 `card_error` with the PaymentIntent in
the error, as Stripe answers), `pm_card_refundFail`, `pm_card_pendingRefund` and
`pm_card_createDispute*` pay and then behave as their cards do (refunds.py,
disputes.py). Without `confirm` the PaymentIntent waits (`requires_payment_method`
or `requires_confirmation`) and can be canceled; confirming later is not emulated.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from stripe_emulator import payment_objects
from stripe_emulator.cards import PAYMENT_METHODS, CardError, charge_card
from stripe_emulator.events import Events
from stripe_emulator.listing import Resource, Route
from stripe_emulator.params import (
    ApiError,
    Obj,
    Params,
    RequestContext,
    apply_metadata,
    check_known,
    missing,
    optional_str,
    to_bool,
    to_int,
    to_str,
)
from stripe_emulator.store import Store, new_id

CREATE_PARAMS = (
    "amount",
    "currency",
    "payment_method",
    "confirm",
    "allowed_payment_method_types",
    "automatic_payment_methods",
    "return_url",
    "metadata",
    "description",
    "receipt_email",
)


class PaymentIntents(Resource):
    def __init__(self, store: Store, events: Events) -> None:
        super().__init__(store)
        self.emit = events.emit
        # Set by Api: what follows a charge (a test card's dispute).
        self.on_charge: Callable[[Obj], None] = lambda charge: None

    def routes(self) -> list[Route]:
        return [("POST", "/v1/payment_intents", lambda p, c: self.intent_create(p, c))]

    def intent_create(self, params: Params, ctx: RequestContext) -> Obj:
        declined: ApiError | None = None
        with self.store.lock:
            check_known(params, CREATE_PARAMS)
            for key in ("amount", "currency"):
                if key not in params:
                    raise missing(key)
            amount = to_int(params["amount"], "amount", minimum=1)
            currency = to_str(params["currency"], "currency").lower()
            confirm = to_bool(params.get("confirm", False), "confirm")
            method = (
                optional_str(params["payment_method"], "payment_method")
                if "payment_method" in params
                else None
            )
            number = PAYMENT_METHODS.get(method or "")
            if method and number is None:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"No such PaymentMethod: '{method}'",
                    code="resource_missing",
                    param="payment_method",
                )
            if confirm and not self._redirect_free(params) and not params.get("return_url"):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "This PaymentIntent is configured to accept payment methods enabled in "
                    "your Dashboard, some of which may require a full page redirect to "
                    "succeed. If you do not want to accept redirect-based payment methods, "
                    "set `automatic_payment_methods[enabled]` to `true` and "
                    "`automatic_payment_methods[allow_redirects]` to `never` when creating "
                    "Setup Intents and Payment Intents. Otherwise, to confirm this "
                    "PaymentIntent, you must provide a `return_url`.",
                )
            if confirm and number is None:
                raise missing("payment_method")
            now = self.store.now()
            intent = payment_objects.payment_intent(
                now=now,
                amount=amount,
                currency=currency,
                payment_method=method,
                metadata=apply_metadata({}, params.get("metadata", {})),
                description=optional_str(params["description"], "description")
                if "description" in params
                else None,
                receipt_email=optional_str(params["receipt_email"], "receipt_email")
                if "receipt_email" in params
                else None,
                capture_method="automatic",
                automatic_payment_methods=None
                if "allowed_payment_method_types" in params
                else {"allow_redirects": self._redirects(params), "enabled": True},
                status="requires_confirmation" if method else "requires_payment_method",
                amount_received=0,
            )
            self.store.put("payment_intents", intent)
            self.emit("payment_intent.created", intent, ctx)
            if confirm and number is not None:
                declined = self._confirm(intent, number, ctx)
            self.store.save()
        if declined is not None:
            raise declined
        return self.render(intent, params.get("expand"))

    @staticmethod
    def _redirects(params: Params) -> str:
        automatic = params.get("automatic_payment_methods")
        allow = automatic.get("allow_redirects") if isinstance(automatic, dict) else None
        return str(allow or "always")

    @staticmethod
    def _redirect_free(params: Params) -> bool:
        """Whether the PaymentIntent can be confirmed without a `return_url`."""
        if "allowed_payment_method_types" in params:
            if params["allowed_payment_method_types"] != ["card"]:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "The emulator takes allowed_payment_method_types=[card] only.",
                    param="allowed_payment_method_types",
                )
            return True
        automatic = params.get("automatic_payment_methods")
        return isinstance(automatic, dict) and automatic.get("allow_redirects") == "never"

    def _confirm(self, intent: Obj, number: str, ctx: RequestContext) -> ApiError | None:
        """Charge the test card: the PaymentIntent succeeds, or the card is declined."""
        try:
            card = charge_card(number, "12/34", "123")
        except CardError as exc:
            intent.update(
                status="requires_payment_method",
                last_payment_error={
                    "code": exc.code,
                    "decline_code": exc.decline_code,
                    "doc_url": f"https://stripe.com/docs/error-codes/{exc.code.replace('_', '-')}",
                    "message": exc.message,
                    "param": None,
                    "payment_method": {"id": intent["payment_method"], "type": "card"},
                    "type": "card_error",
                },
                payment_method=None,
            )
            self.store.put("payment_intents", intent)
            self.emit("payment_intent.payment_failed", intent, ctx)
            error = ApiError(
                HTTPStatus.PAYMENT_REQUIRED, exc.message, type="card_error", code=exc.code
            )
            error.extra = {
                "decline_code": exc.decline_code,
                "payment_intent": self.render(intent),
            }
            return error
        charge = payment_objects.charge(
            now=self.store.now(),
            amount=int(intent["amount"]),
            currency=intent["currency"],
            payment_intent_id=intent["id"],
            payment_method=str(intent["payment_method"]),
            card=card.as_dict(),
            email=None,
            name=None,
            receipt_url=f"https://pay.stripe.com/receipts/{new_id('', 24)}",
        )
        charge["_behaviour"] = card.behaviour
        charge["metadata"] = dict(intent["metadata"])
        charge["description"] = intent["description"]
        intent.update(status="succeeded", amount_received=intent["amount"])
        intent["latest_charge"] = charge["id"]
        self.store.put("charges", charge)
        self.store.put("payment_intents", intent)
        self.emit("charge.succeeded", charge, ctx)
        self.emit("payment_intent.succeeded", intent, ctx)
        self.on_charge(charge)
        return None
