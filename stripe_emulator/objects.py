"""Builders for Stripe-shaped objects.

Each builder starts from an explicit dict holding every top-level field of
the current API's object, with the value Stripe sends for an object created
the way the emulator creates it (mostly null). Keeping the defaults written
out here, rather than read from Stripe's fixtures at run time, lets the
emulator run on its own; a contract test holds the key sets against the
fixtures. Keys starting with ``_`` are private bookkeeping and are stripped by
:func:`public` before anything leaves the emulator.
"""

from __future__ import annotations

import copy
from typing import Any

from stripe_emulator import API_VERSION
from stripe_emulator.store import new_id

# Stripe's zero-decimal currencies: amounts are in whole units.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)

NULL_ADDRESS: dict[str, Any] = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def public(obj: Any) -> Any:
    """A deep copy without the private ``_`` keys."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


def product(*, now: int, name: str, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": new_id("prod_", 14),
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    obj.update(fields)
    return obj


def deleted_product(product_id: str) -> dict[str, Any]:
    return {"id": product_id, "object": "product", "deleted": True}


def price(
    *,
    now: int,
    product_id: str,
    currency: str,
    unit_amount: int,
    recurring: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": new_id("price_"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": now,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
    obj.update(fields)
    return obj


def recurring(interval: str, interval_count: int) -> dict[str, Any]:
    return {
        "interval": interval,
        "interval_count": interval_count,
        "meter": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def line_item(*, price_obj: dict[str, Any], product_name: str, quantity: int) -> dict[str, Any]:
    amount = int(price_obj["unit_amount"]) * quantity
    return {
        "id": new_id("li_"),
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price_obj["currency"],
        "description": product_name,
        "metadata": {},
        "price": public(price_obj),
        "quantity": quantity,
    }


def checkout_session(
    *,
    now: int,
    public_url: str,
    line_items: list[dict[str, Any]],
    currency: str,
    expires_at: int,
    automatic_tax: bool,
    **fields: Any,
) -> dict[str, Any]:
    session_id = new_id("cs_test_", 58)
    subtotal = sum(int(item["amount_subtotal"]) for item in line_items)
    obj: dict[str, Any] = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": {
            "enabled": automatic_tax,
            # The emulator computes no tax; an enabled calculation is "complete" at 0.
            "liability": {"type": "self"} if automatic_tax else None,
            "provider": "stripe" if automatic_tax else None,
            "status": "complete" if automatic_tax else None,
        },
        "billing_address_collection": None,
        "cancel_url": None,
        "client_reference_id": None,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": None,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": None,
        "managed_payments": None,
        "metadata": {},
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": f"{public_url}/pay/{session_id}",
        "wallet_options": None,
        # Line items are not a field of the session; they are only expandable.
        "_line_items": line_items,
    }
    obj.update(fields)
    return obj


def event(
    *,
    now: int,
    event_type: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None,
    request_id: str | None,
    idempotency_key: str | None,
    pending_webhooks: int,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": copy.deepcopy(public(obj))}
    if previous is not None:
        data["previous_attributes"] = copy.deepcopy(public(previous))
    return {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }


def list_object(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
