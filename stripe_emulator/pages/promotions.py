"""The dashboard's promotion codes: the list, and a form that makes a coupon and its code."""

from __future__ import annotations

from typing import Any

from stripe_emulator.api import Api
from stripe_emulator.pages import esc
from stripe_emulator.params import RequestContext, format_amount


def promotion_codes_card(api: Api) -> str:
    codes = api.store.find("promotion_codes", [], limit=20)
    rows = ""
    for promo in codes:
        coupon = api.store.get("coupons", promo["promotion"]["coupon"]) or {}
        off = (
            f"{coupon['percent_off']}% off"
            if coupon.get("percent_off")
            else f"{format_amount(coupon.get('amount_off') or 0, coupon.get('currency') or 'usd')}"
            " off"
        )
        state = "active" if promo["active"] else "archived"
        rows += (
            f"<tr><td><strong>{esc(promo['code'])}</strong><div class='muted'>"
            f"{esc(promo['id'])}</div></td><td>{esc(off)}</td>"
            f"<td>{promo['times_redeemed']}</td>"
            f"<td><span class='pill {state}'>{state}</span></td></tr>"
        )
    empty = "<tr><td colspan=4 class=muted>No codes yet.</td></tr>"
    return (
        "<h2>Promotion codes</h2><div class='card'><table><tr><th>Code</th><th>Discount</th>"
        f"<th>Redeemed</th><th>Status</th></tr>{rows or empty}</table>"
        "<h2>New promotion code</h2><form method='post' action='/dashboard/promotion_codes'>"
        "<div class='row'><div><label for='promo-code'>Code</label>"
        "<input id='promo-code' name='code' placeholder='WELCOME10' required></div>"
        "<div><label for='promo-percent'>Percent off</label>"
        "<input id='promo-percent' name='percent_off' placeholder='10'></div></div>"
        "<div class='row'><div><label for='promo-amount'>Or amount off</label>"
        "<input id='promo-amount' name='amount_off' placeholder='5.00'></div>"
        "<div><label for='promo-currency'>Currency</label>"
        "<input id='promo-currency' name='currency' value='usd'></div></div>"
        "<button style='margin-top:14px'>Create code</button></form></div>"
    )


def create_promotion_code(api: Api, ctx: RequestContext, text: Any, to_minor: Any) -> str:
    """A coupon (percent or amount off, once) and a code for it, as Stripe's dashboard does."""
    params: dict[str, Any] = {"duration": "once"}
    if text("percent_off"):
        params["percent_off"] = text("percent_off")
    elif text("amount_off"):
        currency = (text("currency") or "usd").lower()
        params["amount_off"] = to_minor(text("amount_off"), currency)
        params["currency"] = currency
    else:
        raise ValueError("Give a percent or an amount off.")
    with api.store.lock:
        coupon = api.coupons.coupon_create(params, ctx)
        promo = api.coupons.promotion_code_create(
            {"code": text("code"), "promotion": {"type": "coupon", "coupon": coupon["id"]}}, ctx
        )
    return f"Created promotion code {promo['code']}."
