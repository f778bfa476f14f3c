"""Checkout Sessions: create, retrieve, list, line items, expire, and paying one.

Paying is what the hosted page (and the test endpoint) does with a test card:
it creates the PaymentIntent and the Charge and completes the session.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from stripe_emulator import objects, payment_objects
from stripe_emulator.cards import Card, CardError, charge_card
from stripe_emulator.coupons import Coupons, discount_amount
from stripe_emulator.events import Events
from stripe_emulator.listing import Resource, Route
from stripe_emulator.params import (
    AUTOMATIC,
    MAX_AMOUNT,
    ApiError,
    Filter,
    Obj,
    Params,
    RequestContext,
    apply_metadata,
    check_known,
    created_filters,
    format_amount,
    missing,
    optional_str,
    to_bool,
    to_int,
    to_str,
)
from stripe_emulator.store import Store, new_id

# Stripe accepts expires_at from 30 minutes to 24 hours ahead. The slack
# absorbs clock differences between the app and this process, so an app that
# asks for exactly "now + 30 min" is not refused for being one second late.
EXPIRES_MIN = 30 * 60
EXPIRES_MAX = 24 * 3600
EXPIRES_SLACK = 10
# How a session is paid on the hosted page: a test card, or a US bank account
# that completes the session unpaid and settles later (succeeded or failed).
CARD = "card"
BANK_TRANSFER = "bank_transfer"
# The card a bank transfer's Charge is built from before its details are replaced.
TEST_CARD = Card("visa", "credit", "4242", 12, 2034, "")
# Checkout takes at most 100 line items, each of a quantity up to 999,999.
MAX_LINE_ITEMS = 100
MAX_QUANTITY = 999_999


class Checkout(Resource):
    def __init__(
        self, store: Store, events: Events, *, public_url: str, coupons: Coupons | None = None
    ) -> None:
        super().__init__(store)
        self.emit = events.emit
        self.public_url = public_url.rstrip("/")
        self.coupons = coupons or Coupons(store)

    def routes(self) -> list[Route]:
        path = "/v1/checkout/sessions"
        return [
            ("POST", path, lambda p, c: self.session_create(p, c)),
            ("GET", path, lambda p, c: self.session_list(p)),
            ("GET", path + "/{id}", lambda p, c, id: self.session_retrieve(id, p)),
            ("GET", path + "/{id}/line_items", lambda p, c, id: self.session_line_items(id, p)),
            ("POST", path + "/{id}/expire", lambda p, c, id: self.session_expire(id, p, c)),
        ]

    SESSION_PARAMS = (
        "mode",
        "line_items",
        "success_url",
        "cancel_url",
        "customer_email",
        "client_reference_id",
        "metadata",
        "expires_at",
        "automatic_tax",
        "payment_intent_data",
        "payment_method_types",
        "locale",
        "submit_type",
        "ui_mode",
        "customer_creation",
        "shipping_address_collection",
        "shipping_options",
        "allow_promotion_codes",
    )

    def session_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, self.SESSION_PARAMS)
            if "mode" not in params:
                raise missing("mode")
            if params["mode"] != "payment":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "The emulator supports mode=payment only.",
                    param="mode",
                )
            now = self.store.now()
            line_items, currency = self._line_items(params.get("line_items"))
            expires_at = self._expires_at(params.get("expires_at"), now)
            fields: Obj = {}
            for key in ("success_url", "cancel_url"):
                if key in params:
                    fields[key] = self._url(params[key], key)
            for key in (
                "customer_email",
                "client_reference_id",
                "locale",
                "submit_type",
                "customer_creation",
            ):
                if key in params:
                    fields[key] = optional_str(params[key], key)
            if "metadata" in params:
                fields["metadata"] = apply_metadata({}, params["metadata"])
            automatic_tax = False
            if "automatic_tax" in params:
                tax = params["automatic_tax"]
                if not isinstance(tax, dict) or "enabled" not in tax:
                    raise missing("automatic_tax[enabled]")
                automatic_tax = to_bool(tax["enabled"], "automatic_tax[enabled]")
            session = objects.checkout_session(
                now=now,
                public_url=self.public_url,
                line_items=line_items,
                currency=currency,
                expires_at=expires_at,
                automatic_tax=automatic_tax,
                **fields,
            )
            session["_payment_intent_data"] = self._payment_intent_data(
                params.get("payment_intent_data")
            )
            if "shipping_address_collection" in params:
                session["shipping_address_collection"] = self._address_collection(
                    params["shipping_address_collection"]
                )
            if "shipping_options" in params:
                session["shipping_options"] = self._shipping_options(
                    params["shipping_options"], currency
                )
                if session["shipping_options"]:
                    # Like Stripe, the first option is chosen until the shopper picks another.
                    self._choose_rate(session, session["shipping_options"][0]["shipping_rate"])
            if "allow_promotion_codes" in params:
                session["allow_promotion_codes"] = to_bool(
                    params["allow_promotion_codes"], "allow_promotion_codes"
                )
            reprice(session)
            self.store.put("checkout_sessions", session)
            self.store.save()
            return self.render(session, params.get("expand"))

    @staticmethod
    def _payment_intent_data(value: Any) -> Obj:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid hash", param="payment_intent_data")
        check_known(value, ("metadata", "description", "receipt_email"))
        data: Obj = {}
        if "metadata" in value:
            data["metadata"] = apply_metadata(
                {}, value["metadata"], "payment_intent_data[metadata]"
            )
        for key in ("description", "receipt_email"):
            if key in value:
                data[key] = optional_str(value[key], f"payment_intent_data[{key}]")
        return data

    @staticmethod
    def _address_collection(value: Any) -> Obj:
        param = "shipping_address_collection[allowed_countries]"
        if not isinstance(value, dict) or "allowed_countries" not in value:
            raise missing(param)
        check_known(value, ("allowed_countries",))
        countries = value["allowed_countries"]
        if not isinstance(countries, list) or not countries:
            raise missing(param)
        for i, country in enumerate(countries):
            code = to_str(country, f"{param}[{i}]")
            if len(code) != 2 or not code.isalpha() or not code.isupper():
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Invalid {param}[{i}]: must be a two-letter country code.",
                    param=f"{param}[{i}]",
                )
        return {"allowed_countries": list(countries)}

    def _shipping_options(self, value: Any, currency: str) -> list[Obj]:
        if value == "" or value == []:
            return []
        if not isinstance(value, list):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid array", param="shipping_options")
        options = []
        for i, raw in enumerate(value):
            param = f"shipping_options[{i}][shipping_rate]"
            if not isinstance(raw, dict) or "shipping_rate" not in raw:
                raise missing(param)
            check_known(raw, ("shipping_rate",))
            rate_id = to_str(raw["shipping_rate"], param)
            rate = self.store.get("shipping_rates", rate_id)
            if rate is None:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"No such shipping rate: '{rate_id}'",
                    code="resource_missing",
                    param=param,
                )
            if not rate["active"]:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST, "The shipping rate is not active.", param=param
                )
            if rate["fixed_amount"]["currency"] != currency:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "The shipping rate's currency must match the Checkout Session's.",
                    param=param,
                )
            options.append(
                {"shipping_amount": rate["fixed_amount"]["amount"], "shipping_rate": rate_id}
            )
        return options

    @staticmethod
    def _choose_rate(session: Obj, rate_id: str) -> None:
        for option in session.get("shipping_options") or []:
            if option["shipping_rate"] == rate_id:
                amount = int(option["shipping_amount"])
                session["shipping_cost"] = {
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "shipping_rate": rate_id,
                }
                return
        raise CardError("shipping_rate_invalid", "Choose one of the shipping options.", 400)

    def session_choose(
        self, session_id: str, *, shipping_rate: str | None, promotion_code: str | None
    ) -> Obj:
        """The hosted page's "Apply": pick a shipping rate, apply (or remove) a code."""
        with self.store.lock:
            session = self.session(session_id)
            if session["status"] != "open":
                return session
            self._apply_choices(session, shipping_rate, promotion_code, remove_code=True)
            self.store.put("checkout_sessions", session)
            self.store.save()
            return session

    def _apply_choices(
        self,
        session: Obj,
        shipping_rate: str | None,
        promotion_code: str | None,
        *,
        remove_code: bool = False,
    ) -> None:
        if shipping_rate:
            self._choose_rate(session, shipping_rate)
        code = (promotion_code or "").strip()
        if code:
            if not session.get("allow_promotion_codes"):
                raise CardError("promotion_code_invalid", "This checkout does not take codes.", 400)
            try:
                promo, coupon = self.coupons.redeemable(code, session["currency"])
            except ApiError as exc:
                raise CardError("promotion_code_invalid", exc.message, 400) from exc
            session["discounts"] = [{"coupon": coupon["id"], "promotion_code": promo["id"]}]
            session["_coupon"] = coupon
        elif remove_code:
            session["discounts"] = []
            session.pop("_coupon", None)
        reprice(session)

    @staticmethod
    def _shipping_details(session: Obj, shipping: dict[str, str] | None) -> Obj | None:
        collection = session.get("shipping_address_collection")
        if not collection:
            return None
        given = {k: (v or "").strip() for k, v in (shipping or {}).items()}
        for key, label in (
            ("name", "name"),
            ("line1", "address"),
            ("city", "city"),
            ("postal_code", "postal code"),
            ("country", "country"),
        ):
            if not given.get(key):
                raise CardError("shipping_address_invalid", f"Enter the shipping {label}.", 400)
        if given["country"] not in collection["allowed_countries"]:
            raise CardError("shipping_address_invalid", "We do not ship to that country.", 400)
        return {
            "address": {
                "city": given["city"],
                "country": given["country"],
                "line1": given["line1"],
                "line2": given.get("line2") or None,
                "postal_code": given["postal_code"],
                "state": given.get("state") or None,
            },
            "name": given["name"],
        }

    @staticmethod
    def _url(value: Any, param: str) -> str:
        text = to_str(value, param)
        if not text.startswith(("http://", "https://")):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Not a valid URL",
                code="url_invalid",
                param=param,
            )
        return text

    def _expires_at(self, value: Any, now: int) -> int:
        if value is None:
            return now + EXPIRES_MAX
        expires_at = to_int(value, "expires_at")
        if expires_at < now + EXPIRES_MIN - EXPIRES_SLACK:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The `expires_at` timestamp must be at least 30 minutes from "
                "Checkout Session creation.",
                param="expires_at",
            )
        if expires_at > now + EXPIRES_MAX + EXPIRES_SLACK:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The `expires_at` timestamp must be less than 24 hours from "
                "Checkout Session creation.",
                param="expires_at",
            )
        return expires_at

    def _line_items(self, value: Any) -> tuple[list[Obj], str]:
        if value is None or value == []:
            raise missing("line_items")
        if not isinstance(value, list):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid array", param="line_items")
        if len(value) > MAX_LINE_ITEMS:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"You may only specify up to {MAX_LINE_ITEMS} line items.",
                param="line_items",
            )
        items: list[Obj] = []
        currency = None
        total = 0
        for i, raw in enumerate(value):
            param = f"line_items[{i}]"
            if not isinstance(raw, dict):
                raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid hash", param=param)
            check_known(raw, ("price", "quantity"))
            if "price" not in raw:
                raise missing(f"{param}[price]")
            if "quantity" not in raw:
                raise missing(f"{param}[quantity]")
            price = self._line_item_price(raw["price"], f"{param}[price]")
            quantity = to_int(raw["quantity"], f"{param}[quantity]", minimum=1)
            if quantity > MAX_QUANTITY:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"This value must be less than or equal to {MAX_QUANTITY}.",
                    code="parameter_invalid_integer",
                    param=f"{param}[quantity]",
                )
            total += int(price["unit_amount"]) * quantity
            if currency is not None and price["currency"] != currency:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "All prices on a Checkout Session must use the same currency.",
                    param=f"{param}[price]",
                )
            currency = price["currency"]
            product = self.store.get("products", price["product"]) or {"name": ""}
            items.append(
                objects.line_item(price_obj=price, product_name=product["name"], quantity=quantity)
            )
        assert currency is not None
        if total > MAX_AMOUNT:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"The Checkout Session's total amount due must be no more than "
                f"{format_amount(MAX_AMOUNT, currency)}.",
                code="amount_too_large",
                param="line_items",
            )
        return items, currency

    def _line_item_price(self, value: Any, param: str) -> Obj:
        price_id = to_str(value, param)
        price = self.store.get("prices", price_id)
        if price is None:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"No such price: '{price_id}'",
                code="resource_missing",
                param=param,
            )
        product = self.store.get("products", price["product"])
        if not price["active"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The price specified is inactive. This field only accepts active prices.",
                param=param,
            )
        if product is None or not product["active"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The price specified is set to a product that is not active.",
                param=param,
            )
        if price["type"] == "recurring":
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param=param,
            )
        return price

    def session(self, session_id: str, param: str = "id") -> Obj:
        """The stored session (private fields included), expired first if due."""
        with self.store.lock:
            self.expire_due_sessions()
            return self.get("checkout_sessions", session_id, param)

    def session_retrieve(self, session_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self.session(session_id), params.get("expand"))

    def session_line_items(self, session_id: str, params: Params) -> Obj:
        with self.store.lock:
            check_known(params, ("limit", "starting_after", "ending_before"))
            session = self.session(session_id)
            # Line items keep the order they were given in, unlike other lists.
            return self.paginate_items(
                session["_line_items"],
                params,
                f"/v1/checkout/sessions/{session_id}/line_items",
            )

    def session_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(
                params,
                ("payment_intent", "status", "limit", "starting_after", "ending_before", "created"),
            )
            self.expire_due_sessions()
            filters: list[Filter] = [
                (key, "eq", params[key]) for key in ("payment_intent", "status") if key in params
            ]
            filters += created_filters(params)
            return self.paginate("checkout_sessions", filters, params, "/v1/checkout/sessions")

    def session_expire(self, session_id: str, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, ())
            session = self.session(session_id)
            if session["status"] != "open":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f'This Checkout Session has a status of "{session["status"]}".',
                )
            self._expire(session, ctx)
            self.store.save()
            return self.render(session, params.get("expand"))

    def _expire(self, session: Obj, ctx: RequestContext) -> None:
        session["status"] = "expired"
        session["url"] = None
        self.store.put("checkout_sessions", session)
        self.emit("checkout.session.expired", session, ctx)

    def expire_due_sessions(self) -> int:
        """Expire open sessions past `expires_at`; each fires its event exactly once."""
        with self.store.lock:
            now = self.store.now()
            due = self.store.find(
                "checkout_sessions", [("status", "eq", "open"), ("expires_at", "lte", now)]
            )
            for session in sorted(due, key=lambda s: (s["expires_at"], s["_seq"])):
                self._expire(session, AUTOMATIC)
            if due:
                self.store.save()
            return len(due)

    def session_pay(
        self,
        session_id: str,
        *,
        card_number: str = "",
        expiry: str = "",
        cvc: str = "",
        email: str,
        name: str | None,
        method: str = CARD,
        shipping: dict[str, str] | None = None,
        shipping_rate: str | None = None,
        promotion_code: str | None = None,
    ) -> Obj:
        """Pay an open session; raises CardError when refused.

        `method` is a test card (``card``, the default) or a US bank account
        (``bank_transfer``), which completes the session unpaid and settles
        later (see :meth:`session_settle`). A declined card fails the
        session's PaymentIntent (`payment_intent.payment_failed`) and leaves
        the session open for another try, as Checkout does.

        `shipping` (name, line1, line2, city, postal_code, state, country) is required when
        the session collects an address; `shipping_rate` picks one of its options and
        `promotion_code` applies a code, as the hosted page's fields do. They apply to
        either way of paying.
        """
        declined: CardError | None = None
        with self.store.lock:
            session = self.session(session_id)
            if session["status"] != "open":
                raise CardError(
                    f"session_{session['status']}",
                    "This Checkout Session has expired."
                    if session["status"] == "expired"
                    else "This Checkout Session is already paid.",
                    HTTPStatus.CONFLICT,
                )
            email = email.strip()
            if "@" not in email:
                raise CardError("email_invalid", "Enter a valid email address.", 400)
            name = (name or "").strip() or None
            if method not in (CARD, BANK_TRANSFER):
                raise CardError("payment_method_invalid", "Choose a way to pay.", 400)
            self._apply_choices(session, shipping_rate, promotion_code)
            details = self._shipping_details(session, shipping)
            if method == BANK_TRANSFER:
                self._complete(session, None, email, name, details)
            else:
                try:
                    card = charge_card(card_number, expiry, cvc)
                except CardError as exc:
                    if exc.status != HTTPStatus.PAYMENT_REQUIRED:
                        raise
                    self._payment_failed(session, exc)
                    declined = exc
                else:
                    self._complete(session, card, email, name, details)
            self.store.save()
        if declined is not None:
            raise declined
        return session

    def _intent(self, session: Obj, now: int) -> Obj:
        """The session's PaymentIntent, made on the first attempt to pay."""
        intent_id = session.get("_payment_intent")
        intent = self.store.get("payment_intents", intent_id) if intent_id else None
        if intent is None:
            intent = payment_objects.payment_intent(
                now=now,
                amount=int(session["amount_total"]),
                currency=session["currency"],
                payment_method=None,
                **session.get("_payment_intent_data", {}),
            )
            intent.update(status="requires_payment_method", amount_received=0)
            session["_payment_intent"] = intent["id"]
        # The amount follows the shopper's latest shipping rate and promotion code.
        intent["amount"] = int(session["amount_total"])
        return intent

    def _payment_failed(self, session: Obj, exc: CardError) -> None:
        intent = self._intent(session, self.store.now())
        intent.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error={
                "code": exc.code,
                "decline_code": exc.decline_code,
                "doc_url": f"https://stripe.com/docs/error-codes/{exc.code.replace('_', '-')}",
                "message": exc.message,
                "param": None,
                "payment_method": {"id": new_id("pm_"), "object": "payment_method", "type": "card"},
                "type": "card_error",
            },
        )
        self.store.put("payment_intents", intent)
        self.store.put("checkout_sessions", session)
        self.emit("payment_intent.payment_failed", intent, AUTOMATIC)

    def _customer(self, session: Obj, email: str, name: str | None) -> str | None:
        """Checkout makes a Customer when asked to (`customer_creation=always`)."""
        if session.get("customer_creation") != "always":
            return None
        customer = payment_objects.customer(now=self.store.now(), email=email, name=name)
        self.store.put("customers", customer)
        self.emit("customer.created", customer, AUTOMATIC)
        return str(customer["id"])

    def _complete(
        self, session: Obj, card: Card | None, email: str, name: str | None, shipping: Obj | None
    ) -> None:
        """Complete the session: paid by card, or unpaid until a bank transfer settles."""
        now = self.store.now()
        customer = self._customer(session, email, name)
        payment_method = new_id("pm_")
        amount = int(session["amount_total"])
        intent = self._intent(session, now)
        charge = payment_objects.charge(
            now=now,
            amount=amount,
            currency=session["currency"],
            payment_intent_id=intent["id"],
            payment_method=payment_method,
            card=(card or TEST_CARD).as_dict(),
            email=email,
            name=name,
            receipt_url=f"{self.public_url}/pay/{session['id']}",
        )
        charge["_session"] = session["id"]
        charge["customer"] = customer
        if shipping is not None:
            charge["shipping"] = {
                **shipping,
                "carrier": None,
                "phone": None,
                "tracking_number": None,
            }
        intent.update(
            latest_charge=charge["id"],
            payment_method=payment_method,
            customer=customer,
            last_payment_error=None,
        )
        if card is None:
            fingerprint = new_id("", 16)
            charge.update(
                status="pending",
                paid=False,
                payment_method_details=payment_objects.bank_details(fingerprint=fingerprint),
            )
            charge["outcome"]["seller_message"] = "Payment processing."
            intent.update(
                status="processing", amount_received=0, payment_method_types=["us_bank_account"]
            )
        else:
            intent.update(status="succeeded", amount_received=amount)
        self.store.put("payment_intents", intent)
        self.store.put("charges", charge)
        session.update(
            status="complete",
            payment_status="paid" if card is not None else "unpaid",
            payment_intent=intent["id"],
            customer=customer,
            url=None,
            customer_details=payment_objects.customer_details(email=email, name=name),
            collected_information={
                "business_name": None,
                "individual_name": None,
                "shipping_details": shipping,
            },
        )
        for discount in session.get("discounts") or []:
            self.coupons.redeem(discount["promotion_code"])
        self.store.put("checkout_sessions", session)
        # Stripe's order: the charge, its PaymentIntent, then the session.
        if card is not None:
            self.emit("charge.succeeded", charge, AUTOMATIC)
            self.emit("payment_intent.succeeded", intent, AUTOMATIC)
        else:
            self.emit("charge.pending", charge, AUTOMATIC)
            self.emit("payment_intent.processing", intent, AUTOMATIC)
        self.emit("checkout.session.completed", session, AUTOMATIC)

    def session_settle(self, session_id: str, *, succeeded: bool) -> Obj:
        """A bank transfer paid at Checkout arrives (or bounces), as days later at Stripe."""
        with self.store.lock:
            session = self.session(session_id)
            intent = self.store.get("payment_intents", session.get("payment_intent") or "")
            if (
                session["status"] != "complete"
                or session["payment_status"] != "unpaid"
                or intent is None
                or intent["status"] != "processing"
            ):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "This Checkout Session has no payment waiting to settle.",
                    param="id",
                )
            charge = self.get("charges", intent["latest_charge"])
            if succeeded:
                charge.update(status="succeeded", paid=True)
                charge["outcome"]["seller_message"] = "Payment complete."
                intent.update(status="succeeded", amount_received=intent["amount"])
                session["payment_status"] = "paid"
                events = (
                    ("charge.succeeded", charge),
                    ("payment_intent.succeeded", intent),
                    ("checkout.session.async_payment_succeeded", session),
                )
            else:
                charge.update(
                    status="failed",
                    paid=False,
                    failure_code="insufficient_funds",
                    failure_message="The customer's account has insufficient funds to cover "
                    "this payment.",
                )
                charge["outcome"].update(
                    network_status="declined_by_network",
                    reason="insufficient_funds",
                    seller_message="The bank returned the payment.",
                    type="issuer_declined",
                )
                intent.update(
                    status="requires_payment_method",
                    amount_received=0,
                    last_payment_error={
                        "code": "payment_method_provider_decline",
                        "decline_code": "insufficient_funds",
                        "doc_url": "https://stripe.com/docs/error-codes/"
                        "payment-method-provider-decline",
                        "message": charge["failure_message"],
                        "param": None,
                        "payment_method": {
                            "id": intent["payment_method"],
                            "object": "payment_method",
                            "type": "us_bank_account",
                        },
                        "type": "card_error",
                    },
                )
                events = (
                    ("charge.failed", charge),
                    ("payment_intent.payment_failed", intent),
                    ("checkout.session.async_payment_failed", session),
                )
            self.store.put("charges", charge)
            self.store.put("payment_intents", intent)
            self.store.put("checkout_sessions", session)
            for event_type, obj in events:
                self.emit(event_type, obj, AUTOMATIC)
            self.store.save()
            return session


def reprice(session: Obj) -> None:
    """The session's amounts from its line items, discount and chosen shipping, as Stripe
    reports them: a coupon applies to the items (spread over them), not to shipping."""
    items = session["_line_items"]
    subtotal = sum(int(item["amount_subtotal"]) for item in items)
    coupon = session.get("_coupon")
    discount = discount_amount(coupon, subtotal) if coupon else 0
    left = discount
    for i, item in enumerate(items):
        share = (
            left
            if i == len(items) - 1
            else (discount * int(item["amount_subtotal"]) // subtotal if subtotal else 0)
        )
        left -= share
        item["amount_discount"] = share
        item["amount_total"] = int(item["amount_subtotal"]) - share
    shipping = int((session.get("shipping_cost") or {}).get("amount_total") or 0)
    session["amount_subtotal"] = subtotal
    session["amount_total"] = subtotal - discount + shipping
    session["total_details"] = {
        "amount_discount": discount,
        "amount_shipping": shipping,
        "amount_tax": 0,
    }
