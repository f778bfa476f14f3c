# ruff: noqa: E501  (one case a line reads better as a table)
"""Every endpoint checks its parameters against the SDK's own types, as Stripe does.

For each endpoint the emulator serves: an unknown parameter, a missing required
one (where the SDK's type has one, nested or not), a wrong type and a value
outside an enum (where it has one) each make the SDK raise
`stripe.InvalidRequestError` with Stripe's code, param and message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import stripe

from stripe_emulator import schema

if TYPE_CHECKING:
    from stripe.params import ProductCreateParamsPackageDimensions
from stripe_emulator.api import Api
from stripe_emulator.store import Store
from tests.support.emulator import Emulator, running_emulator


@dataclass(frozen=True)
class Ids:
    product: str
    price: str
    session: str
    payment_intent: str
    charge: str
    refund: str
    event: str


@pytest.fixture(scope="module")
def running() -> Iterator[Emulator]:
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def client(running: Emulator) -> stripe.StripeClient:
    return running.client()


@pytest.fixture(scope="module")
def ids(running: Emulator, client: stripe.StripeClient) -> Ids:
    price = client.v1.prices.create(
        params={"unit_amount": 500, "currency": "usd", "product_data": {"name": "Mug"}}
    )
    paid = client.v1.checkout.sessions.create(params=session_params(price.id))
    running.pay(paid.id)
    paid = client.v1.checkout.sessions.retrieve(paid.id)
    intent = client.v1.payment_intents.retrieve(str(paid.payment_intent))
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    open_session = client.v1.checkout.sessions.create(params=session_params(price.id))
    return Ids(
        product=str(price.product),
        price=price.id,
        session=open_session.id,
        payment_intent=intent.id,
        charge=str(intent.latest_charge),
        refund=refund.id,
        event=client.v1.events.list(params={"limit": 1}).data[0].id,
    )


def session_params(price: str, **extra: Any) -> Any:
    return {
        "mode": "payment",
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": "https://example.com/ok",
        **extra,
    }


# The client is typed Any: these calls break the SDK's types on purpose.
Call = Callable[[Any, Ids], Any]

# (endpoint, kind, call, code, param, message)
CASES: list[tuple[str, str, Call, str | None, str, str]] = [
    # products
    ("POST /v1/products", "unknown", lambda c, i: c.v1.products.create(params={"name": "x", "colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/products", "missing", lambda c, i: c.v1.products.create(params={"description": "x"}), "parameter_missing", "name", "Missing required param: name."),
    ("POST /v1/products", "type", lambda c, i: c.v1.products.create(params={"name": "x", "active": "maybe"}), None, "active", "Invalid boolean: maybe"),
    ("POST /v1/products", "enum", lambda c, i: c.v1.products.create(params={"name": "x", "type": "gadget"}), None, "type", "Invalid type: must be one of good, or service"),
    ("POST /v1/products", "missing nested", lambda c, i: c.v1.products.create(params={"name": "x", "default_price_data": {"unit_amount": 5}}), "parameter_missing", "default_price_data[currency]", "Missing required param: default_price_data[currency]."),
    ("GET /v1/products", "unknown", lambda c, i: c.v1.products.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/products", "type", lambda c, i: c.v1.products.list(params={"limit": "ten"}), "parameter_invalid_integer", "limit", "Invalid integer: ten"),
    ("GET /v1/products", "type nested", lambda c, i: c.v1.products.list(params={"created": {"gte": "soon"}}), "parameter_invalid_integer", "created[gte]", "Invalid integer: soon"),
    ("GET /v1/products", "enum", lambda c, i: c.v1.products.list(params={"type": "gadget"}), None, "type", "Invalid type: must be one of good, or service"),
    ("GET /v1/products/{id}", "unknown", lambda c, i: c.v1.products.retrieve(i.product, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/products/{id}", "type", lambda c, i: c.v1.products.retrieve(i.product, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/products/{id}", "unknown", lambda c, i: c.v1.products.update(i.product, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/products/{id}", "type", lambda c, i: c.v1.products.update(i.product, params={"shippable": "yes"}), None, "shippable", "Invalid boolean: yes"),
    ("DELETE /v1/products/{id}", "unknown", lambda c, i: c.v1.products.delete(i.product, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    # prices
    ("POST /v1/prices", "unknown", lambda c, i: c.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": i.product, "colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/prices", "missing", lambda c, i: c.v1.prices.create(params={"unit_amount": 1, "product": i.product}), "parameter_missing", "currency", "Missing required param: currency."),
    ("POST /v1/prices", "type", lambda c, i: c.v1.prices.create(params={"currency": "usd", "unit_amount": "1.5", "product": i.product}), "parameter_invalid_integer", "unit_amount", "Invalid integer: 1.5"),
    ("POST /v1/prices", "enum", lambda c, i: c.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": i.product, "tax_behavior": "sometimes"}), None, "tax_behavior", "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified"),
    ("POST /v1/prices", "enum nested", lambda c, i: c.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": i.product, "recurring": {"interval": "fortnight"}}), None, "recurring[interval]", "Invalid recurring[interval]: must be one of day, month, week, or year"),
    ("POST /v1/prices", "unknown nested", lambda c, i: c.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": i.product, "recurring": {"interval": "month", "colour": "red"}}), "parameter_unknown", "recurring[colour]", "Received unknown parameter: recurring[colour]"),
    ("POST /v1/prices", "missing nested", lambda c, i: c.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product_data": {"active": True}}), "parameter_missing", "product_data[name]", "Missing required param: product_data[name]."),
    ("GET /v1/prices", "unknown", lambda c, i: c.v1.prices.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/prices", "type", lambda c, i: c.v1.prices.list(params={"active": "yes"}), None, "active", "Invalid boolean: yes"),
    ("GET /v1/prices", "enum", lambda c, i: c.v1.prices.list(params={"type": "monthly"}), None, "type", "Invalid type: must be one of one_time, or recurring"),
    ("GET /v1/prices/{id}", "unknown", lambda c, i: c.v1.prices.retrieve(i.price, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/prices/{id}", "type", lambda c, i: c.v1.prices.retrieve(i.price, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/prices/{id}", "unknown", lambda c, i: c.v1.prices.update(i.price, params={"unit_amount": 5}), "parameter_unknown", "unit_amount", "Received unknown parameter: unit_amount"),
    ("POST /v1/prices/{id}", "type", lambda c, i: c.v1.prices.update(i.price, params={"metadata": "x"}), None, "metadata", "Invalid hash"),
    ("POST /v1/prices/{id}", "enum", lambda c, i: c.v1.prices.update(i.price, params={"tax_behavior": "sometimes"}), None, "tax_behavior", "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified"),
    # checkout sessions
    ("POST /v1/checkout/sessions", "unknown", lambda c, i: c.v1.checkout.sessions.create(params=session_params(i.price, colour="red")), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/checkout/sessions", "unknown nested", lambda c, i: c.v1.checkout.sessions.create(params={**session_params(i.price), "line_items": [{"price": i.price, "quantity": 1, "colour": "red"}]}), "parameter_unknown", "line_items[0][colour]", "Received unknown parameter: line_items[0][colour]"),
    ("POST /v1/checkout/sessions", "missing nested", lambda c, i: c.v1.checkout.sessions.create(params=session_params(i.price, automatic_tax={"liability": {"type": "self"}})), "parameter_missing", "automatic_tax[enabled]", "Missing required param: automatic_tax[enabled]."),
    ("POST /v1/checkout/sessions", "type", lambda c, i: c.v1.checkout.sessions.create(params={**session_params(i.price), "line_items": [{"price": i.price, "quantity": "two"}]}), "parameter_invalid_integer", "line_items[0][quantity]", "Invalid integer: two"),
    ("POST /v1/checkout/sessions", "enum", lambda c, i: c.v1.checkout.sessions.create(params=session_params(i.price, mode="rental")), None, "mode", "Invalid mode: must be one of payment, setup, or subscription"),
    ("GET /v1/checkout/sessions", "unknown", lambda c, i: c.v1.checkout.sessions.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/checkout/sessions", "type", lambda c, i: c.v1.checkout.sessions.list(params={"limit": "all"}), "parameter_invalid_integer", "limit", "Invalid integer: all"),
    ("GET /v1/checkout/sessions", "enum", lambda c, i: c.v1.checkout.sessions.list(params={"status": "paid"}), None, "status", "Invalid status: must be one of complete, expired, or open"),
    ("GET /v1/checkout/sessions/{id}", "unknown", lambda c, i: c.v1.checkout.sessions.retrieve(i.session, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/checkout/sessions/{id}", "type", lambda c, i: c.v1.checkout.sessions.retrieve(i.session, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("GET /v1/checkout/sessions/{id}/line_items", "unknown", lambda c, i: c.v1.checkout.sessions.line_items.list(i.session, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/checkout/sessions/{id}/line_items", "type", lambda c, i: c.v1.checkout.sessions.line_items.list(i.session, params={"limit": "1e3"}), "parameter_invalid_integer", "limit", "Invalid integer: 1e3"),
    ("POST /v1/checkout/sessions/{id}/expire", "unknown", lambda c, i: c.v1.checkout.sessions.expire(i.session, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/checkout/sessions/{id}/expire", "type", lambda c, i: c.v1.checkout.sessions.expire(i.session, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    # payment intents, charges
    ("GET /v1/payment_intents", "unknown", lambda c, i: c.v1.payment_intents.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/payment_intents", "type", lambda c, i: c.v1.payment_intents.list(params={"created": "yesterday"}), "parameter_invalid_integer", "created", "Invalid integer: yesterday"),
    ("GET /v1/payment_intents/{id}", "unknown", lambda c, i: c.v1.payment_intents.retrieve(i.payment_intent, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/payment_intents/{id}", "type", lambda c, i: c.v1.payment_intents.retrieve(i.payment_intent, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/payment_intents/{id}/cancel", "unknown", lambda c, i: c.v1.payment_intents.cancel(i.payment_intent, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/payment_intents/{id}/cancel", "type", lambda c, i: c.v1.payment_intents.cancel(i.payment_intent, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/payment_intents/{id}/cancel", "enum", lambda c, i: c.v1.payment_intents.cancel(i.payment_intent, params={"cancellation_reason": "bored"}), None, "cancellation_reason", "Invalid cancellation_reason: must be one of abandoned, duplicate, fraudulent, or requested_by_customer"),
    ("GET /v1/charges", "unknown", lambda c, i: c.v1.charges.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/charges", "type", lambda c, i: c.v1.charges.list(params={"limit": "-"}), "parameter_invalid_integer", "limit", "Invalid integer: -"),
    ("GET /v1/charges/{id}", "unknown", lambda c, i: c.v1.charges.retrieve(i.charge, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/charges/{id}", "type", lambda c, i: c.v1.charges.retrieve(i.charge, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/payment_intents", "unknown", lambda c, i: c.v1.payment_intents.create(params={"amount": 100, "currency": "usd", "colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/payment_intents", "missing", lambda c, i: c.v1.payment_intents.create(params={"currency": "usd"}), "parameter_missing", "amount", "Missing required param: amount."),
    ("POST /v1/payment_intents", "type", lambda c, i: c.v1.payment_intents.create(params={"amount": "ten", "currency": "usd"}), "parameter_invalid_integer", "amount", "Invalid integer: ten"),
    ("POST /v1/payment_intents", "enum", lambda c, i: c.v1.payment_intents.create(params={"amount": 100, "currency": "usd", "capture_method": "later"}), None, "capture_method", "Invalid capture_method: must be one of automatic, automatic_async, or manual"),
    # refunds
    ("POST /v1/refunds/{id}/cancel", "unknown", lambda c, i: c.v1.refunds.cancel(i.refund, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/refunds/{id}/cancel", "type", lambda c, i: c.v1.refunds.cancel(i.refund, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/refunds", "unknown", lambda c, i: c.v1.refunds.create(params={"payment_intent": i.payment_intent, "colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/refunds", "type", lambda c, i: c.v1.refunds.create(params={"payment_intent": i.payment_intent, "amount": "all"}), "parameter_invalid_integer", "amount", "Invalid integer: all"),
    ("POST /v1/refunds", "enum", lambda c, i: c.v1.refunds.create(params={"payment_intent": i.payment_intent, "reason": "changed_mind"}), None, "reason", "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer"),
    ("GET /v1/refunds", "unknown", lambda c, i: c.v1.refunds.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/refunds", "type", lambda c, i: c.v1.refunds.list(params={"limit": "many"}), "parameter_invalid_integer", "limit", "Invalid integer: many"),
    ("GET /v1/refunds/{id}", "unknown", lambda c, i: c.v1.refunds.retrieve(i.refund, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/refunds/{id}", "type", lambda c, i: c.v1.refunds.retrieve(i.refund, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    # disputes (checked before the object is looked up)
    ("GET /v1/disputes", "unknown", lambda c, i: c.v1.disputes.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/disputes", "type", lambda c, i: c.v1.disputes.list(params={"limit": "ten"}), "parameter_invalid_integer", "limit", "Invalid integer: ten"),
    ("GET /v1/disputes/{id}", "unknown", lambda c, i: c.v1.disputes.retrieve("dp_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/disputes/{id}", "type", lambda c, i: c.v1.disputes.retrieve("dp_x", params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/disputes/{id}", "unknown", lambda c, i: c.v1.disputes.update("dp_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/disputes/{id}", "type", lambda c, i: c.v1.disputes.update("dp_x", params={"submit": "maybe"}), None, "submit", "Invalid boolean: maybe"),
    ("POST /v1/disputes/{id}", "enum", lambda c, i: c.v1.disputes.update("dp_x", params={"intended_submission_method": "fax"}), None, "intended_submission_method", "Invalid intended_submission_method: must be one of manual, prefer_manual, prefer_smart_disputes, or smart_disputes"),
    ("POST /v1/disputes/{id}/close", "unknown", lambda c, i: c.v1.disputes.close("dp_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/disputes/{id}/close", "type", lambda c, i: c.v1.disputes.close("dp_x", params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    # customers (made by Checkout with customer_creation=always)
    ("GET /v1/customers/{id}", "unknown", lambda c, i: c.v1.customers.retrieve("cus_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/customers/{id}", "type", lambda c, i: c.v1.customers.retrieve("cus_x", params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    # shipping rates, coupons, promotion codes (checked before the object is looked up)
    ("POST /v1/shipping_rates", "unknown", lambda c, i: c.v1.shipping_rates.create(params={"display_name": "x", "colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/shipping_rates", "missing", lambda c, i: c.v1.shipping_rates.create(params={"type": "fixed_amount"}), "parameter_missing", "display_name", "Missing required param: display_name."),
    ("POST /v1/shipping_rates", "type", lambda c, i: c.v1.shipping_rates.create(params={"display_name": "x", "fixed_amount": {"amount": "one", "currency": "usd"}}), "parameter_invalid_integer", "fixed_amount[amount]", "Invalid integer: one"),
    ("POST /v1/shipping_rates", "enum", lambda c, i: c.v1.shipping_rates.create(params={"display_name": "x", "tax_behavior": "sometimes"}), None, "tax_behavior", "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified"),
    ("GET /v1/shipping_rates", "unknown", lambda c, i: c.v1.shipping_rates.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/shipping_rates", "type", lambda c, i: c.v1.shipping_rates.list(params={"limit": "ten"}), "parameter_invalid_integer", "limit", "Invalid integer: ten"),
    ("GET /v1/shipping_rates/{id}", "unknown", lambda c, i: c.v1.shipping_rates.retrieve("shr_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/shipping_rates/{id}", "type", lambda c, i: c.v1.shipping_rates.retrieve("shr_x", params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/shipping_rates/{id}", "unknown", lambda c, i: c.v1.shipping_rates.update("shr_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/shipping_rates/{id}", "type", lambda c, i: c.v1.shipping_rates.update("shr_x", params={"active": "maybe"}), None, "active", "Invalid boolean: maybe"),
    ("POST /v1/shipping_rates/{id}", "enum", lambda c, i: c.v1.shipping_rates.update("shr_x", params={"tax_behavior": "sometimes"}), None, "tax_behavior", "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified"),
    ("POST /v1/coupons", "unknown", lambda c, i: c.v1.coupons.create(params={"percent_off": 10, "colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/coupons", "type", lambda c, i: c.v1.coupons.create(params={"amount_off": "lots", "currency": "usd"}), "parameter_invalid_integer", "amount_off", "Invalid integer: lots"),
    ("POST /v1/coupons", "enum", lambda c, i: c.v1.coupons.create(params={"percent_off": 10, "duration": "sometimes"}), None, "duration", "Invalid duration: must be one of forever, once, or repeating"),
    ("GET /v1/coupons", "unknown", lambda c, i: c.v1.coupons.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/coupons", "type", lambda c, i: c.v1.coupons.list(params={"limit": "ten"}), "parameter_invalid_integer", "limit", "Invalid integer: ten"),
    ("GET /v1/coupons/{id}", "unknown", lambda c, i: c.v1.coupons.retrieve("co_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/coupons/{id}", "type", lambda c, i: c.v1.coupons.retrieve("co_x", params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/coupons/{id}", "unknown", lambda c, i: c.v1.coupons.update("co_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/coupons/{id}", "type", lambda c, i: c.v1.coupons.update("co_x", params={"metadata": "x"}), None, "metadata", "Invalid hash"),
    ("POST /v1/promotion_codes", "unknown", lambda c, i: c.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": "co_x"}, "colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/promotion_codes", "missing", lambda c, i: c.v1.promotion_codes.create(params={"code": "X"}), "parameter_missing", "promotion", "Missing required param: promotion."),
    ("POST /v1/promotion_codes", "type", lambda c, i: c.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": "co_x"}, "max_redemptions": "many"}), "parameter_invalid_integer", "max_redemptions", "Invalid integer: many"),
    ("GET /v1/promotion_codes", "unknown", lambda c, i: c.v1.promotion_codes.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/promotion_codes", "type", lambda c, i: c.v1.promotion_codes.list(params={"active": "maybe"}), None, "active", "Invalid boolean: maybe"),
    ("GET /v1/promotion_codes/{id}", "unknown", lambda c, i: c.v1.promotion_codes.retrieve("promo_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/promotion_codes/{id}", "type", lambda c, i: c.v1.promotion_codes.retrieve("promo_x", params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
    ("POST /v1/promotion_codes/{id}", "unknown", lambda c, i: c.v1.promotion_codes.update("promo_x", params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("POST /v1/promotion_codes/{id}", "type", lambda c, i: c.v1.promotion_codes.update("promo_x", params={"active": "maybe"}), None, "active", "Invalid boolean: maybe"),
    # events
    ("GET /v1/events", "unknown", lambda c, i: c.v1.events.list(params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/events", "type", lambda c, i: c.v1.events.list(params={"delivery_success": "mostly"}), None, "delivery_success", "Invalid boolean: mostly"),
    ("GET /v1/events/{id}", "unknown", lambda c, i: c.v1.events.retrieve(i.event, params={"colour": "red"}), "parameter_unknown", "colour", "Received unknown parameter: colour"),
    ("GET /v1/events/{id}", "type", lambda c, i: c.v1.events.retrieve(i.event, params={"expand": {"a": "b"}}), None, "expand", "Invalid array"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("endpoint", "kind", "call", "code", "param", "message"),
    CASES,
    ids=[f"{c[0]} {c[1]}" for c in CASES],
)
def test_a_bad_parameter_gets_stripes_error(
    client: stripe.StripeClient,
    ids: Ids,
    endpoint: str,
    kind: str,
    call: Call,
    code: str | None,
    param: str,
    message: str,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        call(client, ids)

    error = excinfo.value
    assert error.http_status == 400
    assert (error.code, error.param) == (code, param)
    assert error.user_message == message
    assert error.error is not None and error.error.type == "invalid_request_error"


def test_every_endpoint_is_covered_for_every_kind_its_type_allows() -> None:
    """Each route has an unknown and a wrong-type case; a required field or an enum in
    its SDK type (top level) means a case of that kind too."""
    covered: dict[str, set[str]] = {}
    for endpoint, kind, *_ in CASES:
        covered.setdefault(endpoint, set()).add(kind.split()[0])
    types = schema.endpoint_types(("/v1/",))
    served = _served_routes()
    for method, path in served:
        fields = types[(method, path)].fields
        wanted = {"unknown", "type"} if fields else {"unknown"}
        if any(required for _, required in fields.values()):
            wanted.add("missing")
        if any(_has_enum(node) for node, _ in fields.values()) and (method, path) != (
            "POST",
            "/v1/products/{id}",
        ):
            wanted.add("enum")
        assert wanted <= covered.get(f"{method} {path}", set()), f"{method} {path}"


def _has_enum(node: schema.Node) -> bool:
    if isinstance(node, schema.Enum):
        return len(node.values) > 1
    if isinstance(node, schema.Union):
        return any(_has_enum(option) for option in node.options)
    return False


def _served_routes() -> list[tuple[str, str]]:
    store = Store(None)
    try:
        return [(method, path) for method, path, _ in Api(store, public_url="").routes()]
    finally:
        store.close()


def test_the_types_come_from_the_installed_sdk() -> None:
    types = schema.endpoint_types(("/v1/checkout/sessions",))
    create = types[("POST", "/v1/checkout/sessions")]

    assert create.cls is stripe.params.checkout.SessionCreateParams
    assert create.fields["mode"] == (schema.Enum(("payment", "setup", "subscription")), False)
    assert "api_key" not in create.fields  # request options are headers, not parameters


def test_rules_beyond_types(client: stripe.StripeClient, ids: Ids) -> None:
    sdk: Any = client  # dicts built with ** are not the SDK's TypedDicts  # dicts built with ** are not the SDK's TypedDicts
    now = int(time.time())
    cases: list[tuple[Callable[[], Any], str, str | None]] = [
        (lambda: sdk.v1.checkout.sessions.create(params=session_params(ids.price, expires_at=now + 60)), "expires_at", None),
        (lambda: sdk.v1.checkout.sessions.create(params=session_params(ids.price, expires_at=now + 25 * 3600)), "expires_at", None),
        (lambda: sdk.v1.checkout.sessions.create(params={**session_params(ids.price), "line_items": [{"price": ids.price, "quantity": 1}] * 101}), "line_items", None),
        (lambda: sdk.v1.checkout.sessions.create(params={**session_params(ids.price), "line_items": [{"price": ids.price, "quantity": 1_000_000}]}), "line_items[0][quantity]", "parameter_invalid_integer"),
        (lambda: sdk.v1.checkout.sessions.create(params={**session_params(ids.price), "line_items": [{"price": ids.price, "quantity": 999_999}, {"price": ids.price, "quantity": 999_999}]}), "line_items", "amount_too_large"),
        (lambda: sdk.v1.prices.create(params={"currency": "usd", "unit_amount": 100_000_000, "product": ids.product}), "unit_amount", "parameter_invalid_integer"),
        (lambda: sdk.v1.products.create(params={"name": "x", "default_price_data": {"currency": "usd", "unit_amount": 100_000_000}}), "default_price_data[unit_amount]", "parameter_invalid_integer"),
    ]  # fmt: skip
    for call, param, code in cases:
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            call()
        assert (excinfo.value.param, excinfo.value.code) == (param, code)

    top = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 99_999_999, "product": ids.product}
    )
    assert top.unit_amount == 99_999_999


def test_inactive_price_or_product_is_refused_in_checkout(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create(
        params={"unit_amount": 500, "currency": "usd", "product_data": {"name": "Lamp"}}
    )
    client.v1.products.update(str(price.product), params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as product_off:
        client.v1.checkout.sessions.create(params=session_params(price.id))
    client.v1.products.update(str(price.product), params={"active": True})
    client.v1.prices.update(price.id, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as price_off:
        client.v1.checkout.sessions.create(params=session_params(price.id))

    assert product_off.value.param == "line_items[0][price]"
    assert "product that is not active" in str(product_off.value.user_message)
    assert price_off.value.param == "line_items[0][price]"
    assert "inactive" in str(price_off.value.user_message)


def test_an_idempotency_key_is_bound_to_its_endpoint_and_parameters(
    client: stripe.StripeClient, ids: Ids
) -> None:
    options: Any = {"idempotency_key": "key-bound-to-one-request"}
    first = client.v1.products.create(params={"name": "Once"}, options=options)
    again = client.v1.products.create(params={"name": "Once"}, options=options)
    with pytest.raises(stripe.IdempotencyError) as other_params:
        client.v1.products.create(params={"name": "Twice"}, options=options)
    with pytest.raises(stripe.IdempotencyError) as other_endpoint:
        client.v1.prices.create(
            params={"currency": "usd", "unit_amount": 1, "product": ids.product}, options=options
        )

    assert again.id == first.id
    assert "same parameters" in str(other_params.value.user_message)
    assert "('/v1/products' vs '/v1/prices')" in str(other_endpoint.value.user_message)


def test_a_stripe_parameter_the_emulator_lacks_fails_loudly(client: stripe.StripeClient) -> None:
    dimensions: ProductCreateParamsPackageDimensions = {  # valid for Stripe
        "height": 1,
        "length": 1,
        "weight": 1,
        "width": 1,
    }

    with pytest.raises(stripe.InvalidRequestError) as lacking:
        client.v1.products.create(params={"name": "Box", "package_dimensions": dimensions})

    assert (lacking.value.code, lacking.value.param) == ("parameter_unknown", "package_dimensions")
    assert "the emulator does not implement it" in str(lacking.value.user_message)
