"""HTML: the hosted Checkout page and the small dashboard.

Plain server-rendered forms with inline CSS: no JavaScript, no external
assets. Every value that comes from state or from a form goes through
``esc`` (html.escape) before it reaches the page.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stripe_emulator.api import Api, ApiError, RequestContext, format_amount
from stripe_emulator.cards import CardError
from stripe_emulator.objects import ZERO_DECIMAL
from stripe_emulator.store import new_id

if TYPE_CHECKING:
    from stripe_emulator.server import Emulator

esc = html.escape

CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,
sans-serif;color:#1a1f36;background:#f6f9fc}
a{color:#635bff}
.wrap{max-width:920px;margin:40px auto;padding:0 16px}
.card{background:#fff;border-radius:12px;box-shadow:0 2px 5px rgba(50,50,93,.1),
0 1px 1px rgba(0,0,0,.07);padding:28px}
.checkout{display:grid;grid-template-columns:1fr 1fr;gap:40px}
@media (max-width:720px){.checkout{grid-template-columns:1fr}}
.badge{display:inline-block;background:#ffde92;color:#6b4b00;font-size:11px;font-weight:600;
text-transform:uppercase;letter-spacing:.04em;border-radius:4px;padding:1px 6px;margin-left:8px}
.muted{color:#697386}
.total{font-size:34px;font-weight:600;margin:4px 0 24px}
.item{display:flex;gap:12px;align-items:center;padding:10px 0;border-bottom:1px solid #e3e8ee}
.item img{width:44px;height:44px;object-fit:cover;border-radius:6px;border:1px solid #e3e8ee}
.item .name{flex:1}
.item .line{font-weight:600;white-space:nowrap}
.sum{display:flex;justify-content:space-between;padding:12px 0;font-weight:600}
label{display:block;font-size:13px;font-weight:500;color:#3c4257;margin:14px 0 4px}
input,select,textarea{width:100%;font:inherit;padding:9px 11px;border:1px solid #d5dbe1;
border-radius:6px;background:#fff}
input:focus{outline:2px solid #a29bfe;border-color:#635bff}
.row{display:grid;grid-template-columns:1fr 1fr;gap:12px}
button{font:inherit;font-weight:600;border:0;border-radius:6px;padding:11px 16px;cursor:pointer;
background:#635bff;color:#fff}
button.wide{width:100%;margin-top:20px;font-size:16px}
button.plain{background:#fff;color:#3c4257;border:1px solid #d5dbe1;padding:5px 10px}
.error{background:#fff0f0;color:#b3093c;border:1px solid #fbb;border-radius:6px;padding:10px;
margin-top:14px}
.ok{background:#effaf3;color:#0e6245;border:1px solid #b7e4c7;border-radius:6px;padding:10px}
.hint{font-size:12px;color:#697386;margin-top:14px}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:8px 6px;border-bottom:1px solid #e3e8ee;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#697386;font-weight:600}
.pill{font-size:12px;border-radius:10px;padding:1px 8px;background:#e3e8ee}
.pill.delivered,.pill.active{background:#d7f7c2;color:#05690d}
.pill.failed{background:#ffe7f2;color:#b3093c}
.pill.pending{background:#fcedb9;color:#a82c00}
details pre{white-space:pre-wrap;font-size:12px;background:#f6f9fc;padding:8px;border-radius:6px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px}
form.inline{display:inline}
"""


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><div class='wrap'>{body}</div></body></html>"
    )


def fill_session_id(url: str | None, session_id: str) -> str | None:
    """Stripe substitutes this literal placeholder in success and cancel URLs."""
    return url.replace("{CHECKOUT_SESSION_ID}", session_id) if url else None


# -- hosted Checkout ------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    html: str = ""
    redirect: str | None = None


def checkout_get(api: Api, session_id: str) -> tuple[int, str]:
    try:
        session = api.session(session_id)
    except ApiError:
        return HTTPStatus.NOT_FOUND, _not_found()
    return HTTPStatus.OK, _checkout(api, session, {}, None)


def checkout_post(api: Api, session_id: str, form: dict[str, Any]) -> Outcome:
    def field(name: str) -> str:
        value = form.get(name, "")
        return value if isinstance(value, str) else ""

    try:
        session = api.session_pay(
            session_id,
            card_number=field("card"),
            expiry=field("expiry"),
            cvc=field("cvc"),
            email=field("email"),
            name=field("name"),
        )
    except ApiError:
        return Outcome(HTTPStatus.NOT_FOUND, _not_found())
    except CardError as exc:
        session = api.session(session_id)
        return Outcome(exc.status, _checkout(api, session, form, exc.message))
    target = fill_session_id(session["success_url"], session_id)
    if target:
        return Outcome(HTTPStatus.SEE_OTHER, redirect=target)
    return Outcome(HTTPStatus.OK, _checkout(api, session, {}, None))


def _not_found() -> str:
    return page(
        "Checkout session not found",
        "<div class='card'><h1>Something went wrong</h1>"
        "<p class='muted'>This checkout link is not valid.</p></div>",
    )


def _checkout(api: Api, session: dict[str, Any], form: dict[str, Any], error: str | None) -> str:
    currency = session["currency"]
    items = "".join(_item_row(api, item) for item in session["_line_items"])
    summary = (
        f"<div class='muted'>Pay Amazin<span class='badge'>Test mode</span></div>"
        f"<div class='total'>{esc(format_amount(session['amount_total'], currency))}</div>"
        f"{items}"
        f"<div class='sum'><span>Total due</span>"
        f"<span>{esc(format_amount(session['amount_total'], currency))}</span></div>"
    )
    back = fill_session_id(session["cancel_url"], session["id"])
    back_link = f"<p><a href='{esc(back)}'>&larr; Back</a></p>" if back else ""
    status = session["status"]
    if status == "expired":
        right = (
            "<h1>This session has expired</h1><p class='muted'>The checkout session has "
            "expired and can no longer be paid. Go back and start again.</p>"
        )
    elif status == "complete":
        success = fill_session_id(session["success_url"], session["id"])
        link = f"<p><a href='{esc(success)}'>Continue</a></p>" if success else ""
        right = "<div class='ok'><strong>Paid.</strong> Thank you, this order is paid.</div>" + link
        back_link = ""
    else:
        right = _payment_form(session, form, error)
    return page(
        "Checkout",
        f"{back_link}<div class='card checkout'><div>{summary}</div><div>{right}</div></div>",
    )


def _item_row(api: Api, item: dict[str, Any]) -> str:
    price = item["price"]
    product = api.store.get("products", price["product"]) or {}
    images = product.get("images") or []
    image = f"<img src='{esc(images[0])}' alt=''>" if images else ""
    unit = format_amount(price["unit_amount"], price["currency"])
    quantity = item["quantity"]
    line = format_amount(item["amount_total"], item["currency"])
    return (
        f"<div class='item'>{image}<div class='name'>{esc(item['description'])}"
        f"<div class='muted'>Qty {quantity} &times; {esc(unit)}</div></div>"
        f"<div class='line'>{esc(line)}</div></div>"
    )


def _payment_form(session: dict[str, Any], form: dict[str, Any], error: str | None) -> str:
    def value(name: str, default: str = "") -> str:
        raw = form.get(name, default)
        return esc(raw if isinstance(raw, str) else default)

    email = value("email", session.get("customer_email") or "")
    error_html = f"<div class='error' role='alert'>{esc(error)}</div>" if error else ""
    pay = format_amount(session["amount_total"], session["currency"])
    return (
        f"<form method='post' action='/pay/{esc(session['id'])}'>"
        "<h1>Pay with card</h1>"
        f"<label for='email'>Email</label><input id='email' name='email' type='email' "
        f"value='{email}' autocomplete='email'>"
        "<label for='card'>Card number</label><input id='card' name='card' inputmode='numeric' "
        f"placeholder='1234 1234 1234 1234' autocomplete='cc-number' value='{value('card')}'>"
        "<div class='row'><div><label for='expiry'>Expiry</label><input id='expiry' "
        f"name='expiry' placeholder='MM / YY' autocomplete='cc-exp' value='{value('expiry')}'>"
        "</div><div><label for='cvc'>CVC</label><input id='cvc' name='cvc' placeholder='CVC' "
        f"autocomplete='cc-csc' value='{value('cvc')}'></div></div>"
        "<label for='name'>Name on card</label><input id='name' name='name' "
        f"autocomplete='cc-name' value='{value('name')}'>"
        f"{error_html}<button class='wide' type='submit'>Pay {esc(pay)}</button>"
        "<p class='hint'>Test mode: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined; "
        "4000 0000 0000 9995 has insufficient funds. Any future expiry, any 3-digit CVC.</p>"
        "</form>"
    )


# -- dashboard --------------------------------------------------------------------


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


def dashboard(emulator: Emulator, notice: str) -> str:
    api = emulator.api
    with api.store.lock:
        api.expire_due_sessions()
        products = api.store.all("products")
        events = api.store.all("events")[:50]
        sessions = api.store.all("checkout_sessions")[:10]
        deliveries = dict(api.store.state["deliveries"])
        product_rows = "".join(_product_row(api, p) for p in products)
        event_rows = "".join(_event_row(e, deliveries.get(e["id"])) for e in events)
        session_rows = "".join(_session_row(s) for s in sessions)
    forward = emulator.deliverer.forward_to or "(delivery off)"
    notice_html = f"<div class='ok'>{esc(notice)}</div>" if notice else ""
    return page(
        "Stripe emulator",
        f"<h1>Stripe emulator<span class='badge'>Test mode</span></h1>"
        f"<p class='muted'>Webhooks go to {esc(forward)}</p>{notice_html}"
        "<div class='card'><h2 style='margin-top:0'>Products</h2>"
        "<table><tr><th>Name</th><th>Price</th><th>Status</th><th>Edit</th></tr>"
        f"{product_rows or '<tr><td colspan=4 class=muted>No products yet.</td></tr>'}</table>"
        f"{_create_form()}</div>"
        "<h2>Checkout sessions</h2><div class='card'><table><tr><th>Session</th>"
        "<th>Total</th><th>Status</th></tr>"
        f"{session_rows or '<tr><td colspan=3 class=muted>None yet.</td></tr>'}</table></div>"
        "<h2>Events</h2><div class='card'><table><tr><th>Event</th><th>Created</th>"
        "<th>Delivery</th><th></th></tr>"
        f"{event_rows or '<tr><td colspan=4 class=muted>No events yet.</td></tr>'}</table></div>",
    )


def _product_row(api: Api, product: dict[str, Any]) -> str:
    price = api.store.get("prices", product["default_price"] or "")
    if price is None:
        # No default price: show the newest active one, as Stripe's dashboard does.
        candidates = [
            p for p in api.store.all("prices") if p["product"] == product["id"] and p["active"]
        ]
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
        f"<label>Name</label><input name='name' value='{esc(product['name'])}'>"
        f"<label>Description</label><input name='description' "
        f"value='{esc(product['description'] or '')}'>"
        f"<div class='row'><div><label>Price</label><input name='amount' value='{esc(amount)}'>"
        f"</div><div><label>Currency</label><input name='currency' value='{esc(currency)}'>"
        "</div></div><button style='margin-top:10px'>Save</button></form></details>"
        f"<form class='inline' method='post' action='/dashboard/products/{pid}/toggle'>"
        f"<button class='plain'>{toggle}</button></form></td></tr>"
    )


def _create_form() -> str:
    return (
        "<h2>New product</h2><form method='post' action='/dashboard/products'>"
        "<div class='row'><div><label>Name</label><input name='name' required></div>"
        "<div><label>Image URL</label><input name='image' type='url'></div></div>"
        "<label>Description</label><input name='description'>"
        "<div class='row'><div><label>Price</label><input name='amount' placeholder='19.99' "
        "required></div><div><label>Currency</label><input name='currency' value='usd'>"
        "</div></div><button style='margin-top:14px'>Create product</button></form>"
    )


def _session_row(session: dict[str, Any]) -> str:
    sid = esc(session["id"])
    total = format_amount(session["amount_total"], session["currency"])
    return (
        f"<tr><td><a href='/pay/{sid}'>{sid[:24]}…</a></td><td>{esc(total)}</td>"
        f"<td><span class='pill'>{esc(session['status'])}</span></td></tr>"
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


def dashboard_action(emulator: Emulator, path: str, form: dict[str, Any]) -> str:
    """Run one dashboard form; returns where to redirect (POST-redirect-GET)."""
    api = emulator.api
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
            product = api.product_retrieve(parts[2], {})
            api.product_update(parts[2], {"active": not product["active"]}, ctx)
            notice = "Product archived." if product["active"] else "Product restored."
        elif len(parts) == 4 and parts[1] == "events" and parts[3] == "resend":
            found = emulator.deliverer.resend(parts[2])
            notice = "Event queued for delivery." if found else "Delivery is off."
        else:
            notice = "Unknown action."
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
    product = api.product_create(params, ctx)
    return f"Created {product['name']}."


def _edit_product(api: Api, ctx: RequestContext, product_id: str, text: Any) -> str:
    """Edit like a Stripe user: a new price replaces the old, which is archived."""
    with api.store.lock:
        product = api.product_retrieve(product_id, {})
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
            price = api.price_create(
                {"product": product_id, "currency": currency, "unit_amount": new_amount}, ctx
            )
            updates["default_price"] = price["id"]
        api.product_update(product_id, updates, ctx)
        if replace and old_price is not None:
            api.price_update(old_price["id"], {"active": False}, ctx)
    return f"Saved {updates['name']}."
