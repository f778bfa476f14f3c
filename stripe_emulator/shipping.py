"""Shipping rates: create, retrieve, update (`active`, `metadata`), list.

Only `type=fixed_amount` rates, as Checkout's `shipping_options[][shipping_rate]`
refers to them. A Checkout Session charges the chosen rate's amount on top of
its line items (see pricing.py).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from stripe_emulator.listing import Resource, Route
from stripe_emulator.params import (
    ApiError,
    Obj,
    Params,
    RequestContext,
    apply_metadata,
    check_known,
    currency_of,
    missing,
    optional_str,
    to_bool,
    to_int,
    to_str,
)
from stripe_emulator.store import Store, new_id

TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
ESTIMATE_UNITS = ("business_day", "day", "hour", "month", "week")


def shipping_rate(*, now: int, display_name: str, amount: int, currency: str, **fields: Any) -> Obj:
    obj: Obj = {
        "id": new_id("shr_"),
        "object": "shipping_rate",
        "active": True,
        "created": now,
        "delivery_estimate": None,
        "display_name": display_name,
        "fixed_amount": {"amount": amount, "currency": currency},
        "livemode": False,
        "metadata": {},
        "tax_behavior": "unspecified",
        "tax_code": None,
        "type": "fixed_amount",
        "_currency": currency,  # indexed for `list(currency=)`
    }
    obj.update(fields)
    return obj


class Shipping(Resource):
    def __init__(self, store: Store) -> None:
        super().__init__(store)

    def routes(self) -> list[Route]:
        path = "/v1/shipping_rates"
        return [
            ("POST", path, lambda p, c: self.rate_create(p, c)),
            ("GET", path, lambda p, c: self.rate_list(p)),
            ("GET", path + "/{id}", lambda p, c, id: self.retrieve("shipping_rates", id, p)),
            ("POST", path + "/{id}", lambda p, c, id: self.rate_update(id, p)),
        ]

    def rate_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(
                params,
                (
                    "display_name",
                    "type",
                    "fixed_amount",
                    "metadata",
                    "tax_behavior",
                    "tax_code",
                    "delivery_estimate",
                ),
            )
            if "display_name" not in params:
                raise missing("display_name")
            display_name = to_str(params["display_name"], "display_name")
            if params.get("type", "fixed_amount") != "fixed_amount":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "The emulator supports type=fixed_amount only.",
                    param="type",
                )
            fixed = params.get("fixed_amount")
            if not isinstance(fixed, dict):
                raise missing("fixed_amount")
            check_known(fixed, ("amount", "currency"))
            if "amount" not in fixed:
                raise missing("fixed_amount[amount]")
            if "currency" not in fixed:
                raise missing("fixed_amount[currency]")
            amount = to_int(fixed["amount"], "fixed_amount[amount]", minimum=0)
            currency = currency_of(fixed["currency"], "fixed_amount[currency]")
            fields: Obj = {"metadata": apply_metadata({}, params.get("metadata", {}))}
            if "tax_behavior" in params:
                fields["tax_behavior"] = self._tax_behavior(params["tax_behavior"])
            if "tax_code" in params:
                fields["tax_code"] = optional_str(params["tax_code"], "tax_code")
            if "delivery_estimate" in params:
                fields["delivery_estimate"] = self._estimate(params["delivery_estimate"])
            rate = shipping_rate(
                now=self.store.now(),
                display_name=display_name,
                amount=amount,
                currency=currency,
                **fields,
            )
            self.store.put("shipping_rates", rate)
            self.store.save()
            return self.render(rate, params.get("expand"))

    @staticmethod
    def _tax_behavior(value: Any) -> str:
        if value not in TAX_BEHAVIORS:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"Invalid tax_behavior: must be one of {', '.join(TAX_BEHAVIORS)}",
                param="tax_behavior",
            )
        return str(value)

    @staticmethod
    def _estimate(value: Any) -> Obj:
        if not isinstance(value, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid hash", param="delivery_estimate")
        check_known(value, ("minimum", "maximum"))
        estimate: Obj = {"maximum": None, "minimum": None}
        for bound, raw in value.items():
            param = f"delivery_estimate[{bound}]"
            if not isinstance(raw, dict) or raw.get("unit") not in ESTIMATE_UNITS:
                raise missing(f"{param}[unit]")
            check_known(raw, ("unit", "value"))
            estimate[bound] = {
                "unit": raw["unit"],
                "value": to_int(raw.get("value"), f"{param}[value]", minimum=1),
            }
        return estimate

    def rate_update(self, rate_id: str, params: Params) -> Obj:
        with self.store.lock:
            check_known(params, ("active", "metadata", "tax_behavior"))
            rate = self.get("shipping_rates", rate_id)
            if "active" in params:
                rate["active"] = to_bool(params["active"], "active")
            if "metadata" in params:
                rate["metadata"] = apply_metadata(rate["metadata"], params["metadata"])
            if "tax_behavior" in params:
                rate["tax_behavior"] = self._tax_behavior(params["tax_behavior"])
            self.store.put("shipping_rates", rate)
            self.store.save()
            return self.render(rate, params.get("expand"))

    def rate_list(self, params: Params) -> Obj:
        with self.store.lock:
            filters = self.list_filters(params, ("active", "currency"))
            if "currency" in params:
                filters.append(("_currency", "eq", currency_of(params["currency"])))
            return self.paginate("shipping_rates", filters, params, "/v1/shipping_rates")
