"""The hosted Checkout page: a session's line items, total and a card form."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from stripe_emulator.cards import CardError
from stripe_emulator.checkout import BANK_TRANSFER, CARD, Checkout
from stripe_emulator.pages import esc, fill_session_id, page
from stripe_emulator.params import ApiError, format_amount


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


def checkout_post(checkout: Checkout, session_id: str, form: dict[str, Any]) -> Outcome:
    def field(name: str) -> str:
        value = form.get(name, "")
        return value if isinstance(value, str) else ""

    try:
        session = checkout.session_pay(
            session_id,
            card_number=field("card"),
            expiry=field("expiry"),
            cvc=field("cvc"),
            email=field("email"),
            name=field("name"),
            method=field("method") or CARD,
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
        right = _payment_form(session, form, error)
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
    chosen = value("method", CARD)
    methods = "".join(
        f"<label class='choice'><input type='radio' name='method' value='{key}'"
        f"{' checked' if chosen == key else ''}> {label}</label>"
        for key, label in ((CARD, "Card"), (BANK_TRANSFER, "Bank transfer (settles later)"))
    )
    return (
        f"<form method='post' action='/pay/{esc(session['id'])}'>"
        "<h1>Pay with card</h1>"
        f"<label for='email'>Email</label><input id='email' name='email' type='email' "
        f"value='{email}' autocomplete='email'>"
        f"<fieldset><legend>Payment method</legend>{methods}</fieldset>"
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
        "4000 0000 0000 9995 has insufficient funds. Any future expiry, any 3-digit CVC. "
        "A bank transfer needs no card: the session completes unpaid and settles later "
        "(from the dashboard, or POST /_emulator/sessions/{id}/settle).</p>"
        "</form>"
    )
