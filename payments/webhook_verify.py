"""Is a webhook body a genuine Stripe event? Its signature, then its shape.

Separate from payments/stripe_api.py, which calls Stripe: nothing here does. Everything
refused here is the sender's fault, answered 400 by the webhook view, never a 500.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import stripe
from django.conf import settings

from payments.stripe_api import SignatureVerificationError

# What a genuine Stripe event never exceeds: JSON-safe integers (Stripe's ids and amounts fit
# in 2**53), a few levels of nesting, a `created` no later than now, give or take the clocks.
# The hour of slack admits a test clock moved past a Checkout Session's 30 minutes and bounds
# how long a forged future `created` could hold an object against genuine events.
MAX_EVENT_INT = 2**53
MAX_EVENT_DEPTH = 32
MAX_CREATED_AHEAD_SECONDS = 3600
# Stripe's event ids and types are short (`evt_` and 24 characters, `checkout.session.completed`);
# the event log keeps them in 255-character columns.
MAX_EVENT_ID_LENGTH = 255


def verify_webhook(*, payload: bytes, signature: str) -> dict[str, Any]:
    """Check `Stripe-Signature` on the raw body, then parse it.

    Raises SignatureVerificationError for a missing, forged or stale signature, or one
    timestamped in the future (the SDK only checks the past), and ValueError for a body that
    is not a Stripe event: not a JSON object, absurdly nested, an integer out of range, a
    number JSON does not have (`NaN`, `Infinity`, `1e999`), text that is not Unicode (a lone
    surrogate), an id or type longer than any of Stripe's, or created in the future.
    Everything raised here is the sender's fault: a 400, never a 500.
    """
    tolerance = stripe.Webhook.DEFAULT_TOLERANCE
    stripe.WebhookSignature.verify_header(
        payload.decode("utf-8", errors="replace"),
        signature,
        settings.STRIPE_WEBHOOK_SECRET,
        tolerance,
    )
    now = time.time()
    if _signature_timestamp(signature) > now + tolerance:
        # The SDK leaves this constructor unannotated.
        raise SignatureVerificationError("Timestamp in the future", signature, payload)  # type: ignore[no-untyped-call]
    try:
        event = json.loads(payload, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    _check_shape(event)
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not 0 < len(event["id"]) <= MAX_EVENT_ID_LENGTH
        or len(event["type"]) > MAX_EVENT_ID_LENGTH
        or type(event.get("created", 0)) is not int
        or not 0 <= event.get("created", 0) <= now + MAX_CREATED_AHEAD_SECONDS
        or not isinstance(event.get("data", {}), dict)
    ):
        raise ValueError("not a Stripe event")
    return event


def _refuse_constant(name: str) -> float:
    """`NaN`, `Infinity`, `-Infinity`: Python's json reads them, JSON (and jsonb) has none."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    """A JSON number too large for a float (`1e999`) reads as infinity: refused too."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _signature_timestamp(signature: str) -> int:
    for item in signature.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t" and value.strip().isdigit():
            return int(value)
    return 0  # verify_header has already refused a header without one


def _check_shape(value: Any) -> None:
    """Refuse deep nesting, out-of-range integers, NUL characters (which PostgreSQL's jsonb
    cannot store) and text that is not Unicode (a lone surrogate, which no database can
    encode), iteratively (no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_EVENT_DEPTH:
                raise ValueError("nested too deeply")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                children = list(item.values())
            else:
                children = item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_EVENT_INT:
            raise ValueError("integer out of range")


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("NUL character in a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("a string that is not Unicode (a lone surrogate)") from exc
