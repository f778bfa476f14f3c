"""The one module that talks to Stripe (or to the emulator, which only changes the base URL).

Everything else calls these functions and gets plain dicts back, so no other module builds
request parameters by hand or needs to know the SDK's object types.
"""

from __future__ import annotations

import json
import re
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
        PriceCreateParams,
        PriceListParams,
        ProductCreateParams,
        PromotionCodeCreateParams,
        PromotionCodeListParams,
        RefundCreateParams,
        RefundListParams,
        ShippingRateCreateParams,
        ShippingRateListParams,
    )
    from stripe.params.checkout import (
        SessionCreateParams,
        SessionListParams,
        SessionRetrieveParams,
    )

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


# What a promotion code may be made of, as Stripe says (PromotionCodeCreateParams.code).
PROMOTION_CODE = re.compile(r"[A-Za-z0-9-]+")


def products_iter() -> Iterator[dict[str, Any]]:
    for product in client().v1.products.list(params={"limit": 100}).auto_paging_iter():
        yield as_dict(product)


def prices_iter() -> Iterator[dict[str, Any]]:
    """Every price, archived ones too: Stripe lists only active prices unless asked for the
    inactive ones (`active=false`), so one listing would never show a price archived while
    the shop was not listening."""
    for active in (True, False):
        params: PriceListParams = {"limit": 100, "active": active}
        for price in client().v1.prices.list(params=params).auto_paging_iter():
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
    order_token: str,
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
    `shipping_rate_ids` offers those rates (the first preselected). `order_token` goes into
    the metadata, so that a session listed later (`checkout_sessions_since`) is known to be
    this order's and not an order's that had the same id before a database reset.
    """
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [{"price": price, "quantity": quantity} for price, quantity in line_items],
        "client_reference_id": str(order_id),
        "metadata": {"order_id": str(order_id), "order_token": order_token},
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


def checkout_sessions_since(created_gte: int) -> Iterator[dict[str, Any]]:
    """Every Checkout Session created at or after `created_gte` (Unix seconds), newest first.

    Stripe cannot filter sessions by `client_reference_id` or metadata: the caller matches.
    """
    params: SessionListParams = {"limit": 100, "created": {"gte": created_gte}}
    for session in client().v1.checkout.sessions.list(params=params).auto_paging_iter():
        yield as_dict(session)


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
    """Make a code customers type in Checkout: letters, digits and dashes only, as Stripe
    takes them (ValueError otherwise, before Stripe is asked)."""
    if not PROMOTION_CODE.fullmatch(code):
        raise ValueError(f"{code!r}: a promotion code is letters, digits and dashes only")
    params: PromotionCodeCreateParams = {
        "code": code,
        "promotion": {"type": "coupon", "coupon": coupon_id},
    }
    return as_dict(
        client().v1.promotion_codes.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )
