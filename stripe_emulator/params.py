"""Shared by every resource: Stripe's error shape and parameter parsing.

Each helper validates one value the way Stripe does and raises an
:class:`ApiError` whose code and ``param`` match Stripe's answer (unknown
parameter, missing parameter, bad integer ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from stripe_emulator.objects import ZERO_DECIMAL

Params = dict[str, Any]
Obj = dict[str, Any]


class ApiError(Exception):
    """An error answered in Stripe's shape: ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        # More fields of the error (a card error's `decline_code`, `payment_intent`).
        self.extra: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error.update(self.extra)
        return {"error": error}


@dataclass(frozen=True)
class RequestContext:
    """Who caused a change; copied into the `request` field of its events."""

    request_id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = RequestContext()


def missing(param: str) -> ApiError:
    return ApiError(
        HTTPStatus.BAD_REQUEST,
        f"Missing required param: {param}.",
        code="parameter_missing",
        param=param,
    )


def not_found(kind: str, obj_id: str, param: str = "id") -> ApiError:
    return ApiError(
        HTTPStatus.NOT_FOUND,
        f"No such {kind}: '{obj_id}'",
        code="resource_missing",
        param=param,
    )


def check_known(params: Params, allowed: Iterable[str]) -> None:
    """Refuse a parameter the emulator does not implement.

    The API checks every request against Stripe's types first (schema.py), so a
    parameter refused here is one Stripe has: the message says so, to fail loudly
    rather than be silently ignored, with Stripe's code for an unknown one.
    """
    allowed_set = set(allowed) | {"expand"}
    for key in params:
        if key not in allowed_set:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"Received unknown parameter: {key} (Stripe has it; the emulator does not "
                "implement it)",
                code="parameter_unknown",
                param=key,
            )


def to_int(value: Any, param: str, *, minimum: int | None = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"Invalid integer: {value}",
            code="parameter_invalid_integer",
            param=param,
        )
    if minimum is not None and number < minimum:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"This value must be greater than or equal to {minimum}.",
            code="parameter_invalid_integer",
            param=param,
        )
    return number


# Stripe takes amounts of up to eight digits (99999999 is $999,999.99 or ¥99,999,999):
# a price's unit_amount, and the total a Checkout Session charges.
MAX_AMOUNT = 99_999_999


def to_amount(value: Any, param: str) -> int:
    """A price's amount in minor units: 0 to Stripe's eight-digit maximum."""
    amount = to_int(value, param, minimum=0)
    if amount > MAX_AMOUNT:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"This value must be less than or equal to {MAX_AMOUNT}.",
            code="parameter_invalid_integer",
            param=param,
        )
    return amount


def to_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ApiError(
        HTTPStatus.BAD_REQUEST,
        f"Invalid boolean: {value}",
        code="parameter_invalid_boolean",
        param=param,
    )


def to_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"Invalid string: {value!r}",
            code="parameter_invalid_string",
            param=param,
        )
    return value


def optional_str(value: Any, param: str) -> str | None:
    """Stripe unsets a nullable field when it is sent as an empty string."""
    text = to_str(value, param)
    return text or None


def apply_metadata(current: dict[str, str], value: Any, param: str = "metadata") -> dict[str, str]:
    """Merge like Stripe: "" for a key deletes it, "" for the whole hash clears it."""
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "Invalid hash", code="parameter_invalid", param=param
        )
    merged = dict(current)
    for key, item in value.items():
        text = to_str(item, f"{param}[{key}]")
        if text == "":
            merged.pop(key, None)
        else:
            merged[key] = text
    return merged


def currency_of(value: Any, param: str = "currency") -> str:
    text = to_str(value, param).lower()
    if len(text) != 3 or not text.isalpha():
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"Invalid currency: {text}. Stripe currencies are three-letter ISO codes.",
            code="parameter_invalid_string",
            param=param,
        )
    return text


def format_amount(amount: int, currency: str) -> str:
    """Money for messages and pages: minor units -> "$12.34" / "¥1200"."""
    symbols = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
    if currency in ZERO_DECIMAL:
        major = f"{amount:,}"
    else:
        sign = "-" if amount < 0 else ""
        units, cents = divmod(abs(amount), 100)
        major = f"{sign}{units:,}.{cents:02d}"
    symbol = symbols.get(currency)
    return f"{symbol}{major}" if symbol else f"{major} {currency.upper()}"


def changed(before: Obj, after: Obj) -> Obj:
    """Old values of the top-level fields that changed (`previous_attributes`)."""
    return {k: before.get(k) for k in after if not k.startswith("_") and before.get(k) != after[k]}


# A filter on a list, (field, op, value): op is "eq", "in", "prefix" or one of
# Stripe's range operators "gt", "gte", "lt", "lte". The store applies them.
Filter = tuple[str, str, Any]
RANGE_OPS = ("gt", "gte", "lt", "lte")


def created_filters(params: Params) -> list[Filter]:
    """`created=<int>` or `created[gt|gte|lt|lte]=<int>`, as every list accepts."""
    if "created" not in params:
        return []
    created = params["created"]
    if not isinstance(created, dict):
        return [("created", "eq", to_int(created, "created"))]
    filters: list[Filter] = []
    for op, raw in created.items():
        if op not in RANGE_OPS:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"Received unknown parameter: created[{op}]",
                code="parameter_unknown",
                param=f"created[{op}]",
            )
        filters.append(("created", op, to_int(raw, f"created[{op}]")))
    return filters
