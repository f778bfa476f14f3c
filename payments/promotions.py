"""Promotion codes: Checkout shows Stripe's code field (settings.STRIPE_ALLOW_PROMOTION_CODES)
and Stripe applies the code; fulfilment records the discount and the code as the session
reports them (payments.shipping.session_details). Codes are made in Stripe's dashboard; the
demo gets one here."""

from __future__ import annotations

from typing import Any

from payments import stripe_api

DEMO_CODE = "WELCOME10"
DEMO_PERCENT_OFF = 10


def demo_promotion_code_ensure() -> tuple[dict[str, Any], bool]:
    """The demo's WELCOME10 (10% off once), made at Stripe if no active code has that text.

    Returns (promotion code, whether it was created). Idempotency keys make two racing
    seeds create one coupon and one code.
    """
    for promo in stripe_api.promotion_codes_find(DEMO_CODE):
        if promo.get("active"):
            return promo, False
    coupon = stripe_api.coupon_create(
        percent_off=DEMO_PERCENT_OFF,
        name=f"{DEMO_PERCENT_OFF}% off (demo)",
        metadata={"amazin_seed": DEMO_CODE},
        idempotency_key=f"amazin-demo-coupon-{DEMO_CODE}",
    )
    promo = stripe_api.promotion_code_create(
        code=DEMO_CODE,
        coupon_id=coupon["id"],
        idempotency_key=f"amazin-demo-promotion-code-{DEMO_CODE}",
    )
    return promo, True
