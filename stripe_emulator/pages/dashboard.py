"""The dashboard: products (create, edit, archive), recent sessions, payments (payments.py)
and events."""

from __future__ import annotations

import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from stripe_emulator.api import Api
from stripe_emulator.objects import ZERO_DECIMAL
from stripe_emulator.pages import esc, page
from stripe_emulator.pages.payments import payments_action, payments_card
from stripe_emulator.pages.promotions import create_promotion_code, promotion_codes_card
from stripe_emulator.params import ApiError, RequestContext, format_amount
from stripe_emulator.store import new_id
from stripe_emulator.webhooks import Deliverer


def to_minor(amount: str, currency: str) -> int:
    """ "12.50" in usd -> 1250; "1200" in jpy -> 1200."""
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise ValueError(f"Not an amount: {amount!r}") from None
    exponent = 0 if currency in ZERO_DECIMAL else 2
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value() or minor < 0:
        raise ValueError(f"Not an amount in {currency.upper()}: {amount!r}")
    return int(minor)


def to_major(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return str(amount)
    return f"{amount // 100}.{amount % 100:02d}"


def dashboard(api: Api, deliverer: Deliverer, notice: str) -> str:
    with api.store.lock:
        api.checkout.expire_due_sessions()
        products = api.store.find("products", [])
        events = api.store.find("events", [], limit=50)
        sessions = api.store.find("checkout_sessions", [], limit=10)
        deliveries = deliverer.for_events([e["id"] for e in events])
        product_rows = "".join(_product_row(api, p) for p in products)
        event_rows = "".join(_event_row(e, deliveries.get(e["id"])) for e in events)
        session_rows = "".join(_session_row(api, s) for s in sessions)
        promotions = promotion_codes_card(api)
        payments = payments_card(api)
    forward = deliverer.forward_to or "(delivery off)"
    notice_html = f"<div class='ok'>{esc(notice)}</div>" if notice else ""
    return page(
        "Stripe emulator",
        f"<h1>Stripe emulator<span class='badge'>Test mode</span></h1>"
        f"<p class='muted'>Webhooks go to {esc(forward)}</p>{notice_html}"
        "<div class='card'><h2 style='margin-top:0'>Products</h2>"
        "<table><tr><th>Name</th><th>Price</th><th>Status</th><th>Edit</th></tr>"
        f"{product_rows or '<tr><td colspan=4 class=muted>No products yet.</td></tr>'}</table>"
        f"{_create_form()}</div>{promotions}"
        "<h2>Checkout sessions</h2><div class='card'><table><tr><th>Session</th>"
        "<th>Total</th><th>Status</th></tr>"
        f"{session_rows or '<tr><td colspan=3 class=muted>None yet.</td></tr>'}</table></div>"
        f"{payments}<h2>Events</h2><div class='card'><table><tr><th>Event</th><th>Created</th>"
        "<th>Delivery</th><th>Actions</th></tr>"
        f"{event_rows or '<tr><td colspan=4 class=muted>No events yet.</td></tr>'}</table></div>",
    )


def _product_row(api: Api, product: dict[str, Any]) -> str:
    price = api.store.get("prices", product["default_price"] or "")
    if price is None:
        # No default price: show the newest active one, as Stripe's dashboard does.
        candidates = api.store.find(
            "prices", [("product", "eq", product["id"]), ("active", "eq", True)], limit=1
        )
        price = candidates[0] if candidates else None
    shown = format_amount(price["unit_amount"], price["currency"]) if price else "—"
    amount = to_major(price["unit_amount"], price["currency"]) if price else ""
    currency = price["currency"] if price else "usd"
    state = "active" if product["active"] else "archived"
    pid = esc(product["id"])
    toggle = "Archive" if product["active"] else "Unarchive"
    return (
        f"<tr><td><strong>{esc(product['name'])}</strong><div class='muted'>{pid}</div>"
        f"<div class='muted'>{esc(product['description'] or '')}</div></td>"
        f"<td>{esc(shown)}</td><td><span class='pill {state}'>{state}</span></td><td>"
        f"<details><summary>Edit</summary><form method='post' action='/dashboard/products/{pid}'>"
        f"<label for='name-{pid}'>Name</label>"
        f"<input id='name-{pid}' name='name' value='{esc(product['name'])}'>"
        f"<label for='description-{pid}'>Description</label><input id='description-{pid}' "
        f"name='description' value='{esc(product['description'] or '')}'>"
        f"<div class='row'><div><label for='amount-{pid}'>Price</label>"
        f"<input id='amount-{pid}' name='amount' value='{esc(amount)}'></div>"
        f"<div><label for='currency-{pid}'>Currency</label>"
        f"<input id='currency-{pid}' name='currency' value='{esc(currency)}'>"
        "</div></div><button style='margin-top:10px'>Save</button></form></details>"
        f"<form class='inline' method='post' action='/dashboard/products/{pid}/toggle'>"
        f"<button class='plain'>{toggle}</button></form></td></tr>"
    )


def _create_form() -> str:
    return (
        "<h2>New product</h2><form method='post' action='/dashboard/products'>"
        "<div class='row'><div><label for='new-name'>Name</label>"
        "<input id='new-name' name='name' required></div>"
        "<div><label for='new-image'>Image URL</label>"
        "<input id='new-image' name='image' type='url'></div></div>"
        "<label for='new-description'>Description</label>"
        "<input id='new-description' name='description'>"
        "<div class='row'><div><label for='new-amount'>Price</label>"
        "<input id='new-amount' name='amount' placeholder='19.99' required></div>"
        "<div><label for='new-currency'>Currency</label>"
        "<input id='new-currency' name='currency' value='usd'>"
        "</div></div><button style='margin-top:14px'>Create product</button></form>"
    )


def _session_row(api: Api, session: dict[str, Any]) -> str:
    sid = esc(session["id"])
    total = format_amount(session["amount_total"], session["currency"])
    status = session["status"]
    settle = ""
    intent = api.store.get("payment_intents", session.get("payment_intent") or "")
    if status == "complete" and intent is not None and intent["status"] == "canceled":
        status = "complete, payment canceled"  # nothing left to settle
    elif status == "complete" and session["payment_status"] == "unpaid":
        status = "complete, unpaid"
        settle = "".join(
            f"<form method='post' action='/dashboard/sessions/{sid}/settle' class='inline'>"
            f"<input type='hidden' name='outcome' value='{outcome}'>"
            f"<button class='plain'>Settle: {outcome}</button></form> "
            for outcome in ("succeeded", "failed")
        )
    return (
        f"<tr><td><a href='/pay/{sid}'>{sid[:24]}…</a></td><td>{esc(total)}</td>"
        f"<td><span class='pill'>{esc(status)}</span> {settle}</td></tr>"
    )


def _event_row(event: dict[str, Any], delivery: dict[str, Any] | None) -> str:
    eid = esc(event["id"])
    if delivery is None:
        status, detail = "off", ""
    else:
        status = delivery["status"]
        attempts = delivery["attempts"]
        last = attempts[-1] if attempts else None
        outcome = ""
        if last is not None:
            outcome = f", last: {last['status'] or last['error']}"
        detail = f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}{outcome}"
    body = json.dumps(event["data"]["object"], indent=2)
    created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event["created"]))
    resend = (
        f"<form class='inline' method='post' action='/dashboard/events/{eid}/resend'>"
        "<button class='plain'>Resend</button></form>"
        if delivery is not None
        else ""
    )
    return (
        f"<tr><td><details><summary>{esc(event['type'])}</summary><div class='muted'>{eid}</div>"
        f"<pre>{esc(body)}</pre></details></td><td>{created}</td>"
        f"<td><span class='pill {esc(status)}'>{esc(status)}</span> "
        f"<span class='muted'>{esc(detail)}</span></td><td>{resend}</td></tr>"
    )


def dashboard_action(api: Api, deliverer: Deliverer, path: str, form: dict[str, Any]) -> str:
    """Run one dashboard form; returns where to redirect (POST-redirect-GET)."""
    ctx = RequestContext(new_id("req_", 14), None)
    parts = path.strip("/").split("/")

    def text(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    try:
        if parts == ["dashboard", "products"]:
            notice = _create_product(api, ctx, text)
        elif len(parts) == 3 and parts[1] == "products":
            notice = _edit_product(api, ctx, parts[2], text)
        elif len(parts) == 4 and parts[1] == "products" and parts[3] == "toggle":
            product = api.catalog.product_retrieve(parts[2], {})
            api.catalog.product_update(parts[2], {"active": not product["active"]}, ctx)
            notice = "Product archived." if product["active"] else "Product restored."
        elif len(parts) == 4 and parts[1] == "sessions" and parts[3] == "settle":
            succeeded = text("outcome") != "failed"
            api.checkout.session_settle(parts[2], succeeded=succeeded)
            notice = "Bank transfer settled." if succeeded else "Bank transfer failed."
        elif parts == ["dashboard", "promotion_codes"]:
            notice = create_promotion_code(api, ctx, text, to_minor)
        elif len(parts) == 4 and parts[1] == "events" and parts[3] == "resend":
            found = deliverer.resend(parts[2])
            notice = "Event queued for delivery." if found else "Delivery is off."
        else:
            notice = payments_action(api, ctx, parts, text, to_minor) or "Unknown action."
    except (ApiError, ValueError) as exc:
        notice = f"Error: {exc}"
    return "/?notice=" + quote(notice)


def _create_product(api: Api, ctx: RequestContext, text: Any) -> str:
    currency = (text("currency") or "usd").lower()
    params: dict[str, Any] = {
        "name": text("name"),
        "default_price_data": {
            "currency": currency,
            "unit_amount": to_minor(text("amount"), currency),
        },
    }
    if text("description"):
        params["description"] = text("description")
    if text("image"):
        params["images"] = [text("image")]
    product = api.catalog.product_create(params, ctx)
    return f"Created {product['name']}."


def _edit_product(api: Api, ctx: RequestContext, product_id: str, text: Any) -> str:
    """Edit like a Stripe user: a new price replaces the old, which is archived."""
    with api.store.lock:
        product = api.catalog.product_retrieve(product_id, {})
        updates: dict[str, Any] = {"name": text("name"), "description": text("description")}
        old_price = api.store.get("prices", product["default_price"] or "")
        currency = (text("currency") or (old_price or {}).get("currency") or "usd").lower()
        new_amount = to_minor(text("amount"), currency) if text("amount") else None
        replace = new_amount is not None and (
            old_price is None
            or old_price["unit_amount"] != new_amount
            or old_price["currency"] != currency
        )
        if replace:
            price = api.catalog.price_create(
                {"product": product_id, "currency": currency, "unit_amount": new_amount}, ctx
            )
            updates["default_price"] = price["id"]
        api.catalog.product_update(product_id, updates, ctx)
        if replace and old_price is not None:
            api.catalog.price_update(old_price["id"], {"active": False}, ctx)
    return f"Saved {updates['name']}."
