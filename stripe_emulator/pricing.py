"""A Checkout Session's price: its shipping rate, its promotion code, its amounts.

What the hosted page's choices do to a session (shared by choosing them and by
paying), and the shipping details it collects.
"""

from __future__ import annotations

from stripe_emulator.cards import CardError
from stripe_emulator.coupons import Coupons, discount_amount
from stripe_emulator.params import ApiError, Obj


def choose_rate(session: Obj, rate_id: str) -> None:
    """Charge the shipping option `rate_id` (not yet repriced)."""
    for option in session.get("shipping_options") or []:
        if option["shipping_rate"] == rate_id:
            amount = int(option["shipping_amount"])
            session["shipping_cost"] = {
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "shipping_rate": rate_id,
            }
            return
    raise CardError("shipping_rate_invalid", "Choose one of the shipping options.", 400)


def apply_choices(
    coupons: Coupons,
    session: Obj,
    shipping_rate: str | None,
    promotion_code: str | None,
    *,
    remove_code: bool = False,
) -> None:
    """The shopper's shipping rate and promotion code, then the new amounts; with
    `remove_code`, no code removes the one applied (the page's "Apply")."""
    if shipping_rate:
        choose_rate(session, shipping_rate)
    code = (promotion_code or "").strip()
    if code:
        if not session.get("allow_promotion_codes"):
            raise CardError("promotion_code_invalid", "This checkout does not take codes.", 400)
        try:
            promo, coupon = coupons.redeemable(code, session["currency"])
        except ApiError as exc:
            raise CardError("promotion_code_invalid", exc.message, 400) from exc
        session["discounts"] = [{"coupon": coupon["id"], "promotion_code": promo["id"]}]
        session["_coupon"] = coupon
    elif remove_code:
        session["discounts"] = []
        session.pop("_coupon", None)
    reprice(session)


def shipping_details(session: Obj, shipping: dict[str, str] | None) -> Obj | None:
    """The shopper's address, when the session collects one; CardError when incomplete."""
    collection = session.get("shipping_address_collection")
    if not collection:
        return None
    given = {k: (v or "").strip() for k, v in (shipping or {}).items()}
    for key, label in (
        ("name", "name"),
        ("line1", "address"),
        ("city", "city"),
        ("postal_code", "postal code"),
        ("country", "country"),
    ):
        if not given.get(key):
            raise CardError("shipping_address_invalid", f"Enter the shipping {label}.", 400)
    if given["country"] not in collection["allowed_countries"]:
        raise CardError("shipping_address_invalid", "We do not ship to that country.", 400)
    return {
        "address": {
            "city": given["city"],
            "country": given["country"],
            "line1": given["line1"],
            "line2": given.get("line2") or None,
            "postal_code": given["postal_code"],
            "state": given.get("state") or None,
        },
        "name": given["name"],
    }


def reprice(session: Obj) -> None:
    """The session's amounts from its line items, discount and chosen shipping, as Stripe
    reports them: a coupon applies to the items (spread over them), not to shipping."""
    items = session["_line_items"]
    subtotal = sum(int(item["amount_subtotal"]) for item in items)
    coupon = session.get("_coupon")
    discount = discount_amount(coupon, subtotal) if coupon else 0
    left = discount
    for i, item in enumerate(items):
        share = (
            left
            if i == len(items) - 1
            else (discount * int(item["amount_subtotal"]) // subtotal if subtotal else 0)
        )
        left -= share
        item["amount_discount"] = share
        item["amount_total"] = int(item["amount_subtotal"]) - share
    shipping = int((session.get("shipping_cost") or {}).get("amount_total") or 0)
    session["amount_subtotal"] = subtotal
    session["amount_total"] = subtotal - discount + shipping
    session["total_details"] = {
        "amount_discount": discount,
        "amount_shipping": shipping,
        "amount_tax": 0,
    }
