"""Coupons and promotion codes (create, retrieve, update, list), and applying a code.

A coupon is `percent_off`, or `amount_off` with its `currency`; the emulator
supports `duration=once` (and accepts `forever`/`repeating`, which mean the
same thing for a one-off payment). A promotion code is a customer-facing
`code` for one coupon (`promotion[type]=coupon`, `promotion[coupon]`), and
`active` or not. The hosted Checkout page applies a code to a session with
`redeemable` (see pricing.py).
"""

from __future__ import annotations

import re
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

DURATIONS = ("once", "forever", "repeating")
# "Valid characters are lower case letters (a-z), upper case letters (A-Z), digits (0-9),
# and dashes (-)." (the SDK's PromotionCodeCreateParams.code)
CODE = re.compile(r"^[A-Za-z0-9-]{1,200}$")


def coupon(*, now: int, coupon_id: str, **fields: Any) -> Obj:
    obj: Obj = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": None,
        "created": now,
        "currency": None,
        "duration": "once",
        "duration_in_months": None,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "name": None,
        "percent_off": None,
        "redeem_by": None,
        "times_redeemed": 0,
        "valid": True,
    }
    obj.update(fields)
    return obj


def promotion_code(*, now: int, code: str, coupon_id: str, **fields: Any) -> Obj:
    obj: Obj = {
        "id": new_id("promo_"),
        "object": "promotion_code",
        "active": True,
        "code": code,
        "created": now,
        "customer": None,
        "customer_account": None,
        "expires_at": None,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": {
            "first_time_transaction": False,
            "minimum_amount": None,
            "minimum_amount_currency": None,
        },
        "times_redeemed": 0,
        # Indexed for lists: `code` is matched without regard to case, as Stripe does.
        "_code": code.upper(),
        "_coupon": coupon_id,
    }
    obj.update(fields)
    return obj


class Coupons(Resource):
    def __init__(self, store: Store) -> None:
        super().__init__(store)

    def routes(self) -> list[Route]:
        return [
            ("POST", "/v1/coupons", lambda p, c: self.coupon_create(p, c)),
            ("GET", "/v1/coupons", lambda p, c: self.coupon_list(p)),
            ("GET", "/v1/coupons/{id}", lambda p, c, id: self.retrieve("coupons", id, p)),
            ("POST", "/v1/coupons/{id}", lambda p, c, id: self.coupon_update(id, p)),
            ("POST", "/v1/promotion_codes", lambda p, c: self.promotion_code_create(p, c)),
            ("GET", "/v1/promotion_codes", lambda p, c: self.promotion_code_list(p)),
            (
                "GET",
                "/v1/promotion_codes/{id}",
                lambda p, c, id: self.retrieve("promotion_codes", id, p),
            ),
            (
                "POST",
                "/v1/promotion_codes/{id}",
                lambda p, c, id: self.promotion_code_update(id, p),
            ),
        ]

    # coupons -------------------------------------------------------------------

    def coupon_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(
                params,
                (
                    "id",
                    "name",
                    "percent_off",
                    "amount_off",
                    "currency",
                    "duration",
                    "duration_in_months",
                    "max_redemptions",
                    "redeem_by",
                    "metadata",
                ),
            )
            fields: Obj = {"metadata": apply_metadata({}, params.get("metadata", {}))}
            if ("percent_off" in params) == ("amount_off" in params):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "You must pass exactly one of percent_off or amount_off.",
                    param="percent_off",
                )
            if "percent_off" in params:
                percent = self._percent(params["percent_off"])
                fields["percent_off"] = percent
            else:
                fields["amount_off"] = to_int(params["amount_off"], "amount_off", minimum=1)
                if "currency" not in params:
                    raise missing("currency")
            if "currency" in params:
                fields["currency"] = currency_of(params["currency"])
            duration = params.get("duration", "once")
            if duration not in DURATIONS:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "Invalid duration: must be one of forever, once, or repeating",
                    param="duration",
                )
            fields["duration"] = duration
            if duration == "repeating":
                if "duration_in_months" not in params:
                    raise missing("duration_in_months")
                fields["duration_in_months"] = to_int(
                    params["duration_in_months"], "duration_in_months", minimum=1
                )
            for key in ("max_redemptions", "redeem_by"):
                if key in params:
                    fields[key] = to_int(params[key], key, minimum=1)
            if "name" in params:
                fields["name"] = optional_str(params["name"], "name")
            coupon_id = new_id("", 8).upper()
            if "id" in params:
                coupon_id = to_str(params["id"], "id")
                if self.store.get("coupons", coupon_id) is not None:
                    raise ApiError(
                        HTTPStatus.BAD_REQUEST,
                        "Coupon already exists.",
                        code="resource_already_exists",
                        param="id",
                    )
            obj = coupon(now=self.store.now(), coupon_id=coupon_id, **fields)
            self.store.put("coupons", obj)
            self.store.save()
            return self.render(obj, params.get("expand"))

    @staticmethod
    def _percent(value: Any) -> float | int:
        try:
            percent = float(value)
        except (TypeError, ValueError):
            percent = -1.0
        if not 0 < percent <= 100:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Invalid percent_off: must be greater than 0 and at most 100.",
                code="parameter_invalid_decimal",
                param="percent_off",
            )
        return int(percent) if percent.is_integer() else percent

    def coupon_update(self, coupon_id: str, params: Params) -> Obj:
        with self.store.lock:
            check_known(params, ("name", "metadata"))
            obj = self.get("coupons", coupon_id)
            if "name" in params:
                obj["name"] = optional_str(params["name"], "name")
            if "metadata" in params:
                obj["metadata"] = apply_metadata(obj["metadata"], params["metadata"])
            self.store.put("coupons", obj)
            self.store.save()
            return self.render(obj, params.get("expand"))

    def coupon_list(self, params: Params) -> Obj:
        with self.store.lock:
            filters = self.list_filters(params, ())
            return self.paginate("coupons", filters, params, "/v1/coupons")

    # promotion codes -------------------------------------------------------------

    def promotion_code_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(
                params,
                ("promotion", "code", "active", "metadata", "max_redemptions", "expires_at"),
            )
            promotion = params.get("promotion")
            if not isinstance(promotion, dict):
                raise missing("promotion")
            check_known(promotion, ("type", "coupon"))
            if promotion.get("type") != "coupon":
                raise missing("promotion[type]")
            if "coupon" not in promotion:
                raise missing("promotion[coupon]")
            coupon_obj = self.get(
                "coupons", to_str(promotion["coupon"], "promotion[coupon]"), "promotion[coupon]"
            )
            code = new_id("", 8).upper()
            if "code" in params:
                code = to_str(params["code"], "code")
                if not CODE.match(code):
                    raise ApiError(
                        HTTPStatus.BAD_REQUEST,
                        "Invalid code: letters (a-z, A-Z), digits (0-9) and dashes (-) only.",
                        param="code",
                    )
            if self.store.find(
                "promotion_codes", [("_code", "eq", code.upper()), ("active", "eq", True)], 1
            ):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "An active promotion code with `code: " + code + "` already exists.",
                    param="code",
                )
            fields: Obj = {"metadata": apply_metadata({}, params.get("metadata", {}))}
            if "active" in params:
                fields["active"] = to_bool(params["active"], "active")
            for key in ("max_redemptions", "expires_at"):
                if key in params:
                    fields[key] = to_int(params[key], key, minimum=1)
            obj = promotion_code(
                now=self.store.now(), code=code, coupon_id=coupon_obj["id"], **fields
            )
            self.store.put("promotion_codes", obj)
            self.store.save()
            return self.render(obj, params.get("expand"))

    def promotion_code_update(self, promo_id: str, params: Params) -> Obj:
        with self.store.lock:
            check_known(params, ("active", "metadata"))
            obj = self.get("promotion_codes", promo_id)
            if "active" in params:
                obj["active"] = to_bool(params["active"], "active")
            if "metadata" in params:
                obj["metadata"] = apply_metadata(obj["metadata"], params["metadata"])
            self.store.put("promotion_codes", obj)
            self.store.save()
            return self.render(obj, params.get("expand"))

    def promotion_code_list(self, params: Params) -> Obj:
        with self.store.lock:
            filters = self.list_filters(params, ("active", "code", "coupon"))
            if "code" in params:
                filters.append(("_code", "eq", to_str(params["code"], "code").upper()))
            if "coupon" in params:
                filters.append(("_coupon", "eq", to_str(params["coupon"], "coupon")))
            return self.paginate("promotion_codes", filters, params, "/v1/promotion_codes")

    # applying a code ---------------------------------------------------------------

    def redeemable(self, code: str, currency: str) -> tuple[Obj, Obj]:
        """The active promotion code `code` and its coupon, or ApiError for the shopper."""
        with self.store.lock:
            now = self.store.now()
            found = self.store.find(
                "promotion_codes",
                [("_code", "eq", code.strip().upper()), ("active", "eq", True)],
                1,
            )
            invalid = ApiError(
                HTTPStatus.BAD_REQUEST, "This code is invalid.", param="promotion_code"
            )
            if not found:
                raise invalid
            promo = found[0]
            coupon_obj = self.store.get("coupons", promo["promotion"]["coupon"])
            if coupon_obj is None or not coupon_obj["valid"]:
                raise invalid
            if (promo["expires_at"] and promo["expires_at"] <= now) or (
                coupon_obj["redeem_by"] and coupon_obj["redeem_by"] <= now
            ):
                raise invalid
            for obj in (promo, coupon_obj):
                if obj["max_redemptions"] and obj["times_redeemed"] >= obj["max_redemptions"]:
                    raise invalid
            if coupon_obj["amount_off"] and coupon_obj["currency"] != currency:
                raise invalid
            return promo, coupon_obj

    def redeem(self, promo_id: str) -> None:
        """A session paid with this code: count it on the code and on its coupon."""
        with self.store.lock:
            promo = self.store.get("promotion_codes", promo_id)
            if promo is None:
                return
            promo["times_redeemed"] += 1
            self.store.put("promotion_codes", promo)
            coupon_obj = self.store.get("coupons", promo["promotion"]["coupon"])
            if coupon_obj is not None:
                coupon_obj["times_redeemed"] += 1
                self.store.put("coupons", coupon_obj)


def discount_amount(coupon_obj: Obj, subtotal: int) -> int:
    """What a coupon takes off a subtotal, in minor units (never more than the subtotal)."""
    if coupon_obj.get("percent_off"):
        off = round(subtotal * float(coupon_obj["percent_off"]) / 100)
    else:
        off = int(coupon_obj.get("amount_off") or 0)
    return max(0, min(off, subtotal))
