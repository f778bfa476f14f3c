"""The one module that talks to Stripe (or to the emulator, which only changes the base URL).

Everything else calls these functions and gets plain dicts back, so no other module builds
request parameters by hand or needs to know the SDK's object types.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings

if TYPE_CHECKING:
    # The SDK's own request shapes: every call below is checked against them.
    from stripe._base_address import BaseAddresses
    from stripe.params import (
        ChargeListParams,
        CouponCreateParams,
        DisputeListParams,
        EventListParams,
        PaymentIntentCancelParams,
        PriceCreateParams,
        ProductCreateParams,
        PromotionCodeCreateParams,
        PromotionCodeListParams,
        RefundCreateParams,
        RefundListParams,
        ShippingRateCreateParams,
        ShippingRateListParams,
    )
    from stripe.params.checkout import SessionCreateParams, SessionRetrieveParams

# The Stripe API version Amazin was written and tested against, sent with every request.
# Without it the SDK sends its own default, which moves with every SDK upgrade and would
# change the shapes of the objects (and the rules) Amazin gets back. Upgrade on purpose:
# change this, read Stripe's changelog, run the suite (the emulator accepts this version).
STRIPE_API_VERSION = "2026-10-28.endive"

StripeError = stripe.StripeError
APIConnectionError = stripe.APIConnectionError
CardError = stripe.CardError
IdempotencyError = stripe.IdempotencyError
InvalidRequestError = stripe.InvalidRequestError
SignatureVerificationError = stripe.SignatureVerificationError


@cache
def _client_for(api_key: str, api_base: str) -> stripe.StripeClient:
    base_addresses: BaseAddresses | None = {"api": api_base.rstrip("/")} if api_base else None
    return stripe.StripeClient(
        api_key,
        base_addresses=base_addresses,
        max_network_retries=2,
        stripe_version=STRIPE_API_VERSION,
    )


def client() -> stripe.StripeClient:
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def stripe_id_of(value: Any) -> str:
    """The id of an expandable field, whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def as_dict(obj: Any) -> dict[str, Any]:
    """SDK objects are not dicts (`.get` raises); hand the rest of the app plain data."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


# What a genuine Stripe event never exceeds: JSON-safe integers (Stripe's ids and amounts fit
# in 2**53), a few levels of nesting, a `created` no later than now, give or take the clocks.
# The hour of slack admits a test clock moved past a Checkout Session's 30 minutes and bounds
# how long a forged future `created` could hold an object against genuine events.
MAX_EVENT_INT = 2**53
MAX_EVENT_DEPTH = 32
MAX_CREATED_AHEAD_SECONDS = 3600


def verify_webhook(*, payload: bytes, signature: str) -> dict[str, Any]:
    """Check `Stripe-Signature` on the raw body, then parse it.

    Raises SignatureVerificationError for a missing, forged or stale signature, or one
    timestamped in the future (the SDK only checks the past), and ValueError for a body that
    is not a Stripe event: not a JSON object, absurdly nested, an integer out of range, or
    created in the future. Everything raised here is the sender's fault: a 400, never a 500.
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
        event = json.loads(payload)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    _check_shape(event)
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or type(event.get("created", 0)) is not int
        or not 0 <= event.get("created", 0) <= now + MAX_CREATED_AHEAD_SECONDS
        or not isinstance(event.get("data", {}), dict)
    ):
        raise ValueError("not a Stripe event")
    return event


def _signature_timestamp(signature: str) -> int:
    for item in signature.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t" and value.strip().isdigit():
            return int(value)
    return 0  # verify_header has already refused a header without one


def _check_shape(value: Any) -> None:
    """Refuse deep nesting, out-of-range integers and NUL characters (which PostgreSQL's
    jsonb cannot store), iteratively (no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_EVENT_DEPTH:
                raise ValueError("nested too deeply")
            if isinstance(item, dict):
                if any("\x00" in key for key in item):
                    raise ValueError("NUL character in a key")
                children = list(item.values())
            else:
                children = item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValueError("NUL character in a string")
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_EVENT_INT:
            raise ValueError("integer out of range")


def products_iter() -> Iterator[dict[str, Any]]:
    for product in client().v1.products.list(params={"limit": 100}).auto_paging_iter():
        yield as_dict(product)


def prices_iter() -> Iterator[dict[str, Any]]:
    for price in client().v1.prices.list(params={"limit": 100}).auto_paging_iter():
        yield as_dict(price)


def events_since(created_gte: int) -> Iterator[dict[str, Any]]:
    """Every event Stripe still has (it keeps 30 days) created at or after `created_gte`."""
    params: EventListParams = {"limit": 100, "created": {"gte": created_gte}}
    for event in client().v1.events.list(params=params).auto_paging_iter():
        # As the webhook would carry it: plain JSON (the SDK turns *_decimal strings into
        # Decimal), so the event log stores the same thing whichever way an event came.
        yield json.loads(json.dumps(as_dict(event), default=str))


def product_retrieve(product_id: str) -> dict[str, Any]:
    return as_dict(client().v1.products.retrieve(product_id))


def _current(retrieve: Callable[[str], object], stripe_id: str) -> dict[str, Any]:
    try:
        return as_dict(retrieve(stripe_id))
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing":
            return {"id": stripe_id, "deleted": True}
        raise


def product_current(product_id: str) -> dict[str, Any]:
    """The product as Stripe has it now, or a `deleted` stub if it is gone."""
    return _current(client().v1.products.retrieve, product_id)


def price_current(price_id: str) -> dict[str, Any]:
    """The price as Stripe has it now, or a `deleted` stub if it is gone."""
    return _current(client().v1.prices.retrieve, price_id)


def product_create(
    *, name: str, description: str, images: list[str], metadata: dict[str, str]
) -> dict[str, Any]:
    params: ProductCreateParams = {
        "name": name,
        "description": description,
        "images": images,
        "metadata": metadata,
    }
    return as_dict(client().v1.products.create(params=params))


def product_set_default_price(product_id: str, price_id: str) -> dict[str, Any]:
    return as_dict(client().v1.products.update(product_id, params={"default_price": price_id}))


def price_create(
    *, product_id: str, unit_amount: int, currency: str, lookup_key: str = ""
) -> dict[str, Any]:
    params: PriceCreateParams = {
        "product": product_id,
        "unit_amount": unit_amount,
        "currency": currency,
    }
    if lookup_key:
        params["lookup_key"] = lookup_key
    return as_dict(client().v1.prices.create(params=params))


def checkout_session_create(
    *,
    line_items: list[tuple[str, int]],
    order_id: int,
    customer_email: str,
    expires_at: int,
    success_url: str,
    cancel_url: str,
    automatic_tax: bool,
    idempotency_key: str,
    shipping_countries: list[str] | None = None,
    shipping_rate_ids: list[str] | None = None,
    allow_promotion_codes: bool = False,
) -> dict[str, Any]:
    """A payment-mode Checkout Session for the server's own (price id, quantity) pairs.

    `shipping_countries` makes Checkout collect an address in one of them, and
    `shipping_rate_ids` offers those rates (the first preselected).
    """
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [{"price": price, "quantity": quantity} for price, quantity in line_items],
        "client_reference_id": str(order_id),
        "metadata": {"order_id": str(order_id)},
        "expires_at": expires_at,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if customer_email:
        params["customer_email"] = customer_email
    if automatic_tax:
        params["automatic_tax"] = {"enabled": True}
    if shipping_countries:
        params["shipping_address_collection"] = {"allowed_countries": shipping_countries}
    if shipping_rate_ids:
        params["shipping_options"] = [{"shipping_rate": rate} for rate in shipping_rate_ids]
    if allow_promotion_codes:
        params["allow_promotion_codes"] = True
    return as_dict(
        client().v1.checkout.sessions.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )


def checkout_session_retrieve(session_id: str) -> dict[str, Any]:
    """The session with its line items, payment intent and shipping rate, as fulfilment
    needs them."""
    params: SessionRetrieveParams = {
        "expand": ["line_items", "payment_intent", "shipping_cost.shipping_rate"]
    }
    return as_dict(client().v1.checkout.sessions.retrieve(session_id, params=params))


def checkout_session_expire(session_id: str) -> dict[str, Any]:
    return as_dict(client().v1.checkout.sessions.expire(session_id))


def refund_create(
    *,
    payment_intent: str,
    order_id: int,
    idempotency_key: str,
    amount: int | None = None,
    reason: str = "",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Refund a payment: in full, or `amount` (minor units) of it."""
    params: RefundCreateParams = {
        "payment_intent": payment_intent,
        "metadata": {"order_id": str(order_id), **(metadata or {})},
    }
    if amount is not None:
        params["amount"] = amount
    if reason:
        params["reason"] = reason
    return as_dict(
        client().v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
    )


def charge_retrieve(charge_id: str) -> dict[str, Any]:
    """A charge as Stripe has it now (since API 2022-11-15 without its refunds: list them)."""
    return as_dict(client().v1.charges.retrieve(charge_id))


def refund_retrieve(refund_id: str) -> dict[str, Any]:
    return as_dict(client().v1.refunds.retrieve(refund_id))


def dispute_retrieve(dispute_id: str) -> dict[str, Any]:
    return as_dict(client().v1.disputes.retrieve(dispute_id))


def payment_intent_retrieve(payment_intent_id: str) -> dict[str, Any]:
    return as_dict(client().v1.payment_intents.retrieve(payment_intent_id))


def refunds_of_payment(payment_intent_id: str) -> list[dict[str, Any]]:
    """Every refund of a payment (made here or in Stripe's dashboard), newest first."""
    params: RefundListParams = {"payment_intent": payment_intent_id, "limit": 100}
    return [as_dict(r) for r in client().v1.refunds.list(params=params).auto_paging_iter()]


def disputes_of_payment(payment_intent_id: str) -> list[dict[str, Any]]:
    params: DisputeListParams = {"payment_intent": payment_intent_id, "limit": 100}
    return [as_dict(d) for d in client().v1.disputes.list(params=params).auto_paging_iter()]


# The books (payments.books): everything made in a period, a page of 100 per request.


def charges_created(*, gte: int, lt: int) -> Iterator[dict[str, Any]]:
    params: ChargeListParams = {"created": {"gte": gte, "lt": lt}, "limit": 100}
    for charge in client().v1.charges.list(params=params).auto_paging_iter():
        yield as_dict(charge)


def refunds_created(*, gte: int, lt: int) -> Iterator[dict[str, Any]]:
    params: RefundListParams = {"created": {"gte": gte, "lt": lt}, "limit": 100}
    for refund in client().v1.refunds.list(params=params).auto_paging_iter():
        yield as_dict(refund)


def disputes_created(*, gte: int, lt: int) -> Iterator[dict[str, Any]]:
    params: DisputeListParams = {"created": {"gte": gte, "lt": lt}, "limit": 100}
    for dispute in client().v1.disputes.list(params=params).auto_paging_iter():
        yield as_dict(dispute)


def payment_intent_cancel(payment_intent_id: str, *, idempotency_key: str) -> dict[str, Any]:
    """Give up on a payment whose money never came (a bank transfer never sent).

    Stripe refuses (InvalidRequestError, `payment_intent_unexpected_state`) an intent that
    has succeeded meanwhile, or was canceled already: ask the session again to see which.
    """
    params: PaymentIntentCancelParams = {"cancellation_reason": "abandoned"}
    return as_dict(
        client().v1.payment_intents.cancel(
            payment_intent_id, params=params, options={"idempotency_key": idempotency_key}
        )
    )


def shipping_rates_active() -> Iterator[dict[str, Any]]:
    params: ShippingRateListParams = {"active": True, "limit": 100}
    for rate in client().v1.shipping_rates.list(params=params).auto_paging_iter():
        yield as_dict(rate)


def shipping_rate_create(
    *,
    display_name: str,
    amount: int,
    currency: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> dict[str, Any]:
    params: ShippingRateCreateParams = {
        "display_name": display_name,
        "type": "fixed_amount",
        "fixed_amount": {"amount": amount, "currency": currency},
        "metadata": metadata,
    }
    return as_dict(
        client().v1.shipping_rates.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )


def promotion_code_retrieve(promotion_code_id: str) -> dict[str, Any]:
    return as_dict(client().v1.promotion_codes.retrieve(promotion_code_id))


def promotion_codes_find(code: str) -> list[dict[str, Any]]:
    params: PromotionCodeListParams = {"code": code, "limit": 10}
    return [as_dict(p) for p in client().v1.promotion_codes.list(params=params).data]


def coupon_create(
    *, percent_off: int, name: str, metadata: dict[str, str], idempotency_key: str
) -> dict[str, Any]:
    params: CouponCreateParams = {
        "percent_off": percent_off,
        "duration": "once",
        "name": name,
        "metadata": metadata,
    }
    return as_dict(
        client().v1.coupons.create(params=params, options={"idempotency_key": idempotency_key})
    )


def promotion_code_create(*, code: str, coupon_id: str, idempotency_key: str) -> dict[str, Any]:
    params: PromotionCodeCreateParams = {
        "code": code,
        "promotion": {"type": "coupon", "coupon": coupon_id},
    }
    return as_dict(
        client().v1.promotion_codes.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )
