"""Webhook handlers for checkout and refunds, registered with payments.webhooks.

The event is only a trigger: fulfilment asks Stripe for the session again, so a forged,
stale or reordered event can never mark an order paid by itself.
"""

from __future__ import annotations

from typing import Any

from payments import services
from payments.webhooks import register


@register("checkout.session.completed")
@register("checkout.session.async_payment_succeeded")
def checkout_session_paid(obj: dict[str, Any], created: int) -> None:
    if obj.get("id"):
        services.fulfil_checkout_session(session_id=obj["id"])


@register("checkout.session.expired")
def checkout_session_expired(obj: dict[str, Any], created: int) -> None:
    if obj.get("id"):
        services.checkout_session_expired(session_id=obj["id"])


@register("charge.refunded")
def charge_refunded(obj: dict[str, Any], created: int) -> None:
    if obj.get("refunded"):
        services.order_refunded(payment_intent_id=services.stripe_id_of(obj.get("payment_intent")))
