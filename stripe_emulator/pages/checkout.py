"""The hosted Checkout page: a session's line items and amounts, a shipping address and
rate when the session collects them, a promotion code when it allows them, a card form."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from stripe_emulator.cards import CardError
from stripe_emulator.checkout import Checkout
from stripe_emulator.pages import esc, fill_session_id, page
from stripe_emulator.params import ApiError, format_amount
from stripe_emulator.paying import BANK_TRANSFER, CARD


@dataclass
class Outcome:
    status: int
    html: str = ""
    redirect: str | None = None


def checkout_get(checkout: Checkout, session_id: str) -> tuple[int, str]:
    try:
        session = checkout.session(session_id)
    except ApiError:
        return HTTPStatus.NOT_FOUND, _not_found()
    return HTTPStatus.OK, _checkout(checkout, session, {}, None)


FIELDSET = (
    "style='border:1px solid #d5dbe1;border-radius:6px;margin:14px 0 0;padding:4px 12px 12px'"
)
SHIPPING_FIELDS = ("name", "line1", "line2", "city", "postal_code", "state", "country")


def _field(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def choices(form: dict[str, Any]) -> dict[str, Any]:
    """The shipping address, rate and promotion code a form (the page's or the test
    endpoint's) carries, as `Checkout.session_pay` takes them."""
    shipping = {key: _field(form, f"shipping_{key}") for key in SHIPPING_FIELDS}
    return {
        "shipping": shipping if any(shipping.values()) else None,
        "shipping_rate": _field(form, "shipping_rate") or None,
        "promotion_code": _field(form, "promotion_code") or None,
    }


def checkout_post(checkout: Checkout, session_id: str, form: dict[str, Any]) -> Outcome:
    def field(name: str) -> str:
        return _field(form, name)

    if field("action") == "apply":
        picked = choices(form)
        try:
            session = checkout.session_choose(
                session_id,
                shipping_rate=picked["shipping_rate"],
                promotion_code=picked["promotion_code"],
            )
        except ApiError:
            return Outcome(HTTPStatus.NOT_FOUND, _not_found())
        except CardError as exc:
            session = checkout.session(session_id)
            return Outcome(exc.status, _checkout(checkout, session, form, exc.message))
        return Outcome(HTTPStatus.OK, _checkout(checkout, session, form, None))
    shown = field("shown_total")
    try:
        session = checkout.session_pay(
            session_id,
            shown_total=int(shown) if shown.isdigit() else None,
            card_number=field("card"),
            expiry=field("expiry"),
            cvc=field("cvc"),
            email=field("email"),
            name=field("name"),
            method=field("method") or CARD,
            **choices(form),
        )
    except ApiError:
        return Outcome(HTTPStatus.NOT_FOUND, _not_found())
    except CardError as exc:
        session = checkout.session(session_id)
        return Outcome(exc.status, _checkout(checkout, session, form, exc.message))
    target = fill_session_id(session["success_url"], session_id)
    if target:
        return Outcome(HTTPStatus.SEE_OTHER, redirect=target)
    return Outcome(HTTPStatus.OK, _checkout(checkout, session, {}, None))


def _not_found() -> str:
    return page(
        "Checkout session not found",
        "<div class='card'><h1>Something went wrong</h1>"
        "<p class='muted'>This checkout link is not valid.</p></div>",
    )


def _checkout(
    checkout: Checkout, session: dict[str, Any], form: dict[str, Any], error: str | None
) -> str:
    currency = session["currency"]
    items = "".join(_item_row(checkout, item) for item in session["_line_items"])
    totals = session["total_details"] or {}
    rows = [("Subtotal", session["amount_subtotal"])]
    if totals.get("amount_discount"):
        codes = [
            (checkout.store.get("promotion_codes", d["promotion_code"]) or {}).get("code", "")
            for d in session.get("discounts") or []
        ]
        rows.append((f"Discount {' '.join(codes)}".strip(), -int(totals["amount_discount"])))
    if session.get("shipping_cost"):
        rows.append(("Shipping", totals.get("amount_shipping") or 0))
    breakdown = "".join(
        f"<div class='sum muted' data-amount='{esc(label)}'><span>{esc(label)}</span>"
        f"<span{' data-shows=shipping' if label == 'Shipping' else ''}>"
        f"{'-' if amount < 0 else ''}{esc(format_amount(abs(amount), currency))}</span>"
        "</div>"
        for label, amount in rows
    )
    total = esc(format_amount(session["amount_total"], currency))
    summary = (
        f"<div class='muted'>Pay Amazin<span class='badge'>Test mode</span></div>"
        f"<div class='total' data-shows='total'>{total}</div>"
        f"{items}{breakdown}"
        f"<div class='sum'><span>Total due</span><span data-shows='total'>{total}</span></div>"
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
        if session["payment_status"] == "paid":
            done = "<strong>Paid.</strong> Thank you, this order is paid."
        else:
            done = (
                "<strong>Payment processing.</strong> The bank transfer settles later; "
                "the order is paid once it does."
            )
        right = f"<div class='ok'>{done}</div>" + link
        back_link = ""
    else:
        right = _payment_form(checkout, session, form, error)
    return page(
        "Checkout",
        f"{back_link}<div class='card checkout'><div>{summary}</div><div>{right}</div></div>",
    )


def _item_row(checkout: Checkout, item: dict[str, Any]) -> str:
    price = item["price"]
    product = checkout.store.get("products", price["product"]) or {}
    images = product.get("images") or []
    image = f"<img src='{esc(images[0])}' alt=''>" if images else ""
    unit = format_amount(price["unit_amount"], price["currency"])
    quantity = item["quantity"]
    line = format_amount(item["amount_subtotal"], item["currency"])  # before any discount
    return (
        f"<div class='item'>{image}<div class='name'>{esc(item['description'])}"
        f"<div class='muted'>Qty {quantity} &times; {esc(unit)}</div></div>"
        f"<div class='line'>{esc(line)}</div></div>"
    )


def _shipping_fields(checkout: Checkout, session: dict[str, Any], value: Any) -> str:
    html = ""
    collection = session.get("shipping_address_collection")
    if collection:
        countries = collection["allowed_countries"]
        chosen = value("shipping_country", countries[0])
        options = "".join(
            f"<option value='{esc(c)}'{' selected' if c == chosen else ''}>{esc(c)}</option>"
            for c in countries
        )

        def text(key: str, label: str, autocomplete: str) -> str:
            name = f"shipping_{key}"
            return (
                f"<label for='{name}'>{label}</label><input id='{name}' name='{name}' "
                f"autocomplete='shipping {autocomplete}' value='{value(name)}'>"
            )

        html += (
            f"<fieldset {FIELDSET}><legend>Shipping address</legend>"
            + text("name", "Full name", "name")
            + text("line1", "Address", "address-line1")
            + text("line2", "Address line 2 (optional)", "address-line2")
            + "<div class='row'><div>"
            + text("city", "City", "address-level2")
            + "</div><div>"
            + text("postal_code", "Postal code", "postal-code")
            + "</div></div>"
            + text("state", "State or region (optional)", "address-level1")
            + "<label for='shipping_country'>Country</label>"
            + "<select id='shipping_country' name='shipping_country' "
            + f"autocomplete='shipping country'>{options}</select></fieldset>"
        )
    rates = session.get("shipping_options") or []
    if rates:
        current = (session.get("shipping_cost") or {}).get("shipping_rate")
        picked = value("shipping_rate", current or "")
        radios = ""
        # What the total is with each rate (a coupon never applies to shipping), so that
        # the page's script shows it the moment a rate is picked.
        currency = session["currency"]
        before_shipping = int(session["amount_total"]) - int(
            (session.get("total_details") or {}).get("amount_shipping") or 0
        )
        for option in rates:
            rate = checkout.store.get("shipping_rates", option["shipping_rate"]) or {}
            rate_id = option["shipping_rate"]
            amount = format_amount(option["shipping_amount"], currency)
            total = before_shipping + int(option["shipping_amount"])
            checked = " checked" if rate_id == picked else ""
            radios += (
                "<label class='choice' style='display:flex;gap:8px;align-items:center'>"
                f"<input type='radio' name='shipping_rate' style='width:auto;margin:0' "
                f"data-total='{total}' data-total-text='{esc(format_amount(total, currency))}' "
                f"data-shipping-text='{esc(amount)}' value='{esc(rate_id)}'{checked}> "
                f"{esc(rate.get('display_name') or rate_id)} &middot; {esc(amount)}</label>"
            )
        html += f"<fieldset {FIELDSET}><legend>Shipping method</legend>{radios}</fieldset>"
    if session.get("allow_promotion_codes"):
        applied = ""
        for discount in session.get("discounts") or []:
            promo = checkout.store.get("promotion_codes", discount["promotion_code"]) or {}
            applied = promo.get("code", "")
        html += (
            "<label for='promotion_code'>Promotion code</label><div class='row'><div>"
            f"<input id='promotion_code' name='promotion_code' "
            f"value='{value('promotion_code', applied)}'></div><div>"
            "<button type='submit' name='action' value='apply'>Apply</button></div></div>"
        )
    elif rates:
        html += "<button type='submit' name='action' value='apply'>Update total</button>"
    return html


def _payment_form(
    checkout: Checkout, session: dict[str, Any], form: dict[str, Any], error: str | None
) -> str:
    def value(name: str, default: str = "") -> str:
        raw = form.get(name, default)
        return esc(raw if isinstance(raw, str) else default)

    email = value("email", session.get("customer_email") or "")
    error_html = f"<div class='error' role='alert'>{esc(error)}</div>" if error else ""
    pay = format_amount(session["amount_total"], session["currency"])
    shown = f"<input type='hidden' name='shown_total' value='{int(session['amount_total'])}'>"
    if int(session["amount_total"]) == 0:
        return (
            f"<form method='post' action='/pay/{esc(session['id'])}'>{shown}"
            "<h1>Nothing to pay</h1>"
            f"<label for='email'>Email</label><input id='email' name='email' type='email' "
            f"value='{email}' autocomplete='email'>"
            f"{_shipping_fields(checkout, session, value)}{error_html}"
            "<button class='wide' type='submit' data-shows='pay'>Complete order</button>"
            f"</form>{LIVE_TOTAL}"
        )
    chosen = value("method", CARD)
    methods = "".join(
        f"<label class='choice'><input type='radio' name='method' value='{key}'"
        f"{' checked' if chosen == key else ''}> {label}</label>"
        for key, label in ((CARD, "Card"), (BANK_TRANSFER, "Bank transfer (settles later)"))
    )
    return (
        f"<form method='post' action='/pay/{esc(session['id'])}'>{shown}"
        "<h1>Pay with card</h1>"
        f"<label for='email'>Email</label><input id='email' name='email' type='email' "
        f"value='{email}' autocomplete='email'>"
        f"{_shipping_fields(checkout, session, value)}"
        f"<fieldset><legend>Payment method</legend>{methods}</fieldset>"
        "<label for='card'>Card number</label><input id='card' name='card' inputmode='numeric' "
        f"placeholder='1234 1234 1234 1234' autocomplete='cc-number' value='{value('card')}'>"
        "<div class='row'><div><label for='expiry'>Expiry</label><input id='expiry' "
        f"name='expiry' placeholder='MM / YY' autocomplete='cc-exp' value='{value('expiry')}'>"
        "</div><div><label for='cvc'>CVC</label><input id='cvc' name='cvc' placeholder='CVC' "
        f"autocomplete='cc-csc' value='{value('cvc')}'></div></div>"
        "<label for='name'>Name on card</label><input id='name' name='name' "
        f"autocomplete='cc-name' value='{value('name')}'>"
        f"{error_html}<button class='wide' type='submit' data-shows='pay'>Pay {esc(pay)}</button>"
        "<p class='hint'>Test mode: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined; "
        "4000 0000 0000 9995 has insufficient funds. Any future expiry, any 3-digit CVC. "
        "A bank transfer needs no card: the session completes unpaid and settles later "
        "(from the dashboard, or POST /_emulator/sessions/{id}/settle).</p>"
        f"</form>{LIVE_TOTAL}"
    )


# With JavaScript, the total follows the shipping rate as soon as one is picked; the
# form then sends the total it shows (`shown_total`). Without, the form sends the total
# the page was rendered with, and a payment whose rate or code changes it is not charged:
# the page comes back with the new total to confirm (Paying.session_pay).
LIVE_TOTAL = """<script>
document.querySelectorAll("input[name=shipping_rate]").forEach(function (radio) {
  radio.addEventListener("change", function () {
    if (!radio.checked) return;
    document.querySelectorAll("[data-shows=total]").forEach(function (el) {
      el.textContent = radio.dataset.totalText;
    });
    document.querySelectorAll("[data-shows=shipping]").forEach(function (el) {
      el.textContent = radio.dataset.shippingText;
    });
    document.querySelectorAll("[data-shows=pay]").forEach(function (el) {
      if (el.textContent.indexOf("Pay ") === 0) el.textContent = "Pay " + radio.dataset.totalText;
    });
    document.querySelector("input[name=shown_total]").value = radio.dataset.total;
  });
});
</script>"""
