"""Checkout Sessions: create, retrieve, list, line items, expire.

Paying a session (the hosted page), its amounts, and expiring it when due are
paying.py and pricing.py.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from stripe_emulator import objects
from stripe_emulator.listing import Route
from stripe_emulator.params import (
    MAX_AMOUNT,
    ApiError,
    Obj,
    Params,
    RequestContext,
    apply_metadata,
    check_known,
    format_amount,
    missing,
    optional_str,
    to_bool,
    to_int,
    to_str,
)
from stripe_emulator.paying import Paying
from stripe_emulator.pricing import choose_rate, reprice

# Stripe accepts expires_at from 30 minutes to 24 hours ahead. The slack
# absorbs clock differences between the app and this process, so an app that
# asks for exactly "now + 30 min" is not refused for being one second late.
EXPIRES_MIN = 30 * 60
EXPIRES_MAX = 24 * 3600
EXPIRES_SLACK = 10
# Checkout takes at most 100 line items, each of a quantity up to 999,999.
MAX_LINE_ITEMS = 100
MAX_QUANTITY = 999_999
# "The shipping rate options to apply to this Session. Up to a maximum of 5." (the SDK)
MAX_SHIPPING_OPTIONS = 5


class Checkout(Paying):
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
                    choose_rate(session, session["shipping_options"][0]["shipping_rate"])
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
        if len(value) > MAX_SHIPPING_OPTIONS:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"You may only specify up to {MAX_SHIPPING_OPTIONS} shipping options.",
                param="shipping_options",
            )
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
            keys = ("payment_intent", "status")
            filters = self.list_filters(params, keys)
            self.expire_due_sessions()
            filters += [(key, "eq", params[key]) for key in keys if key in params]
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
