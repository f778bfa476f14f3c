"""The emulator's own test endpoints, under /_emulator/ (Stripe has none of them).

Tests call them to see webhook deliveries and wait for them, to move the
clock, to pay or settle a Checkout Session without the hosted page, and to
resend an event. Each answer is (status, JSON-able body); server.py sends it.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from stripe_emulator.api import Api
from stripe_emulator.cards import CardError
from stripe_emulator.faults import Faults
from stripe_emulator.forms import parse_form, parse_pairs
from stripe_emulator.pages import checkout as checkout_page
from stripe_emulator.pages import fill_session_id
from stripe_emulator.params import ApiError
from stripe_emulator.webhooks import Deliverer

Answer = tuple[int, Any]


def handle(
    api: Api, deliverer: Deliverer, faults: Faults, method: str, path: str, query: str, body: str
) -> Answer:
    """Answer a request to /_emulator/...; ApiError (404) for an unknown one."""
    params = parse_form(query)
    if path == "/_emulator/faults" and method == "GET":
        return HTTPStatus.OK, {"object": "list", "data": faults.pending()}
    if path == "/_emulator/faults" and method == "POST":
        form = parse_form(body)
        try:
            count, seconds = int(form.get("count", 1)), float(form.get("seconds", 0))
        except (TypeError, ValueError):
            raise ApiError(HTTPStatus.BAD_REQUEST, "count and seconds are numbers.") from None
        data = faults.add(
            method=str(form.get("method", "POST")),
            path=str(form.get("path", "")),
            when=str(form.get("when", "after")),
            count=count,
            seconds=seconds,
        )
        return HTTPStatus.OK, {"object": "list", "data": data}
    if path == "/_emulator/faults/clear" and method == "POST":
        faults.clear()
        return HTTPStatus.OK, {"object": "list", "data": []}
    if method == "GET" and path == "/_emulator/deliveries":
        rows = deliverer.listing(params.get("event"))
        return HTTPStatus.OK, {"object": "list", "data": rows}
    if method == "POST" and path == "/_emulator/flush":
        timeout = min(float(params.get("timeout", 10)), 30.0)
        return HTTPStatus.OK, deliverer.flush(timeout)
    if method == "POST" and path == "/_emulator/clock/advance":
        seconds = int(params.get("seconds", parse_form(body).get("seconds", 0)))
        now = api.store.advance_clock(seconds)
        with api.store.lock:
            expired = api.checkout.expire_due_sessions()
            settled = api.refunds.settle_due()
        return HTTPStatus.OK, {"now": now, "expired_sessions": expired, "refunds": settled}
    match = re.fullmatch(r"/_emulator/refunds/([^/]+)/transition", path)
    if method == "POST" and match:
        form = parse_form(body)
        refund = api.refunds.refund_transition(
            match.group(1),
            str(form.get("to", "")),
            failure_reason=str(form["failure_reason"]) if form.get("failure_reason") else None,
        )
        return HTTPStatus.OK, {"refund": api.refunds.render(refund)}
    match = re.fullmatch(r"/_emulator/charges/([^/]+)/dispute", path)
    if method == "POST" and match:
        form = parse_form(body)
        dispute = api.disputes.dispute_open(
            match.group(1),
            reason=str(form.get("reason", "fraudulent")),
            inquiry=str(form.get("inquiry", "")) == "true",
        )
        return HTTPStatus.OK, {"dispute": api.disputes.render(dispute)}
    match = re.fullmatch(r"/_emulator/disputes/([^/]+)/decide", path)
    if method == "POST" and match:
        outcome = str(parse_form(body).get("outcome", ""))
        if outcome not in ("won", "lost"):
            raise ApiError(HTTPStatus.BAD_REQUEST, "outcome is won or lost.")
        dispute = api.disputes.dispute_decide(match.group(1), won=outcome == "won")
        return HTTPStatus.OK, {"dispute": api.disputes.render(dispute)}
    match = re.fullmatch(r"/_emulator/sessions/([^/]+)/pay", path)
    if method == "POST" and match:
        return pay(api, match.group(1), body)
    match = re.fullmatch(r"/_emulator/sessions/([^/]+)/settle", path)
    if method == "POST" and match:
        outcome = str(parse_form(body).get("outcome", "succeeded"))
        if outcome not in ("succeeded", "failed"):
            raise ApiError(HTTPStatus.BAD_REQUEST, "outcome is succeeded or failed.")
        session = api.checkout.session_settle(match.group(1), succeeded=outcome == "succeeded")
        return HTTPStatus.OK, {"session": api.checkout.render(session)}
    match = re.fullmatch(r"/_emulator/events/([^/]+)/resend", path)
    if method == "POST" and match:
        found = deliverer.resend(match.group(1))
        return HTTPStatus.OK if found else HTTPStatus.NOT_FOUND, {"resent": found}
    raise ApiError(HTTPStatus.NOT_FOUND, f"Unrecognized request URL ({method}: {path}).")


def pay(api: Api, session_id: str, body: str) -> Answer:
    """Pay a session as the hosted page would; test card 4242... unless the form says."""
    form = parse_pairs(parse_qsl(body, keep_blank_values=True))
    checkout = api.checkout
    try:
        session = checkout.session_pay(
            session_id,
            card_number=str(form.get("card", "4242424242424242")),
            expiry=str(form.get("expiry", "12/34")),
            cvc=str(form.get("cvc", "123")),
            email=str(form.get("email", "buyer@example.com")),
            name=str(form.get("name", "")) or None,
            method=str(form.get("method", "card")),
            shown_total=_shown_total(form),
            **checkout_page.choices(form),
        )
    except CardError as exc:
        session = checkout.session(session_id)
        return exc.status, {
            "paid": False,
            "error": {
                "code": exc.code,
                "decline_code": exc.decline_code,
                "message": exc.message,
            },
            "session": checkout.render(session),
        }
    return HTTPStatus.OK, {
        "paid": session["payment_status"] == "paid",
        "redirect": fill_session_id(session["success_url"], session_id),
        "session": checkout.render(session),
    }


def _shown_total(form: dict[str, Any]) -> int | None:
    shown = str(form.get("shown_total", ""))
    return int(shown) if shown.isdigit() else None
