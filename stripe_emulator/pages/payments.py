"""The dashboard's payments: each charge with its refunds and disputes, and what a
merchant does to them in Stripe's dashboard (refund in full or in part, see a dispute
opened), plus what the bank does in test mode (a pending refund succeeds or fails, a
dispute is won or lost), all through the same operations as the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stripe_emulator.api import Api
from stripe_emulator.disputes import OPEN, REASONS, REVIEW
from stripe_emulator.pages import esc
from stripe_emulator.params import RequestContext, format_amount

LIMIT = 50


def payments_card(api: Api) -> str:
    with api.store.lock:
        api.catch_up()
        charges = api.store.find("charges", [], limit=LIMIT)
        rows = "".join(_charge_row(api, charge) for charge in charges)
    empty = "<tr><td colspan=4 class=muted>No payments yet.</td></tr>"
    return (
        "<h2 id='payments'>Payments</h2><div class='card'><table>"
        "<tr><th scope='col'>Payment</th><th scope='col'>Amount</th>"
        "<th scope='col'>Status</th><th scope='col'>Actions</th></tr>"
        f"{rows or empty}</table></div>"
    )


def _charge_row(api: Api, charge: dict[str, Any]) -> str:
    cid = esc(charge["id"])
    currency = charge["currency"]
    amount = int(charge["amount"])
    refunded = int(charge["amount_refunded"])
    status = charge["status"]
    if charge["refunded"]:
        status = "refunded"
    elif refunded:
        status = f"partially refunded ({format_amount(refunded, currency)})"
    if charge["disputed"]:
        status += ", disputed"
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(charge["created"]))
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    method = f"{card.get('brand', '')} •••• {card.get('last4', '')}" if card else "bank"
    refunds = api.store.find("refunds", [("charge", "eq", charge["id"])])
    disputes = api.store.find("disputes", [("charge", "eq", charge["id"])])
    details = "".join(_refund_line(r) for r in refunds) + "".join(
        _dispute_line(d) for d in disputes
    )
    actions = ""
    if (
        charge["status"] == "succeeded"
        and refunded < amount
        and not api.disputes.refund_blocked(charge)
    ):
        left = format_amount(amount - refunded, currency)
        actions += (
            f"<form method='post' action='/dashboard/charges/{cid}/refund'>"
            f"<label for='refund-{cid}'>Refund amount (blank: all {esc(left)})</label>"
            f"<input id='refund-{cid}' name='amount' inputmode='decimal'>"
            "<button class='plain' style='margin-top:6px'>Refund</button></form>"
        )
    if charge["status"] == "succeeded" and not charge["disputed"]:
        options = "".join(f"<option value='{r}'>{r.replace('_', ' ')}</option>" for r in REASONS)
        actions += (
            f"<form method='post' action='/dashboard/charges/{cid}/dispute'>"
            f"<label for='dispute-{cid}'>Dispute reason</label>"
            f"<select id='dispute-{cid}' name='reason'>{options}</select>"
            "<button class='plain' style='margin-top:6px'>Open dispute</button></form>"
        )
    return (
        f"<tr><td><strong>{cid}</strong><div class='muted'>{esc(method)} · {created}</div>"
        f"{details}</td><td>{esc(format_amount(amount, currency))}</td>"
        f"<td><span class='pill'>{esc(status)}</span></td><td>{actions}</td></tr>"
    )


def _button(action: str, name: str, value: str, label: str, what: str) -> str:
    """A one-button form; its accessible name says which object it acts on."""
    return (
        f"<form class='inline' method='post' action='{esc(action)}'>"
        f"<input type='hidden' name='{name}' value='{value}'>"
        f"<button class='plain' aria-label='{esc(label)} {what}'>{esc(label)}</button></form> "
    )


def _refund_line(refund: dict[str, Any]) -> str:
    rid = esc(refund["id"])
    amount = format_amount(int(refund["amount"]), refund["currency"])
    status = refund["status"]
    why = f" ({refund['failure_reason']})" if refund.get("failure_reason") else ""
    buttons = ""
    if status in ("pending", "requires_action"):
        action = f"/dashboard/refunds/{refund['id']}/transition"
        buttons = _button(action, "to", "succeeded", "Succeed", f"refund {rid}") + _button(
            action, "to", "failed", "Fail", f"refund {rid}"
        )
    return (
        f"<div class='muted'>Refund {rid} · {esc(amount)} · "
        f"<span class='pill {esc(status)}'>{esc(status)}{esc(why)}</span> {buttons}</div>"
    )


def _dispute_line(dispute: dict[str, Any]) -> str:
    did = esc(dispute["id"])
    amount = format_amount(int(dispute["amount"]), dispute["currency"])
    status = dispute["status"]
    buttons = ""
    if status in (*OPEN, *REVIEW):
        action = f"/dashboard/disputes/{dispute['id']}/decide"
        buttons = _button(action, "outcome", "won", "Won", f"dispute {did}") + _button(
            action, "outcome", "lost", "Lost", f"dispute {did}"
        )
    return (
        f"<div class='muted'>Dispute {did} · {esc(amount)} · {esc(dispute['reason'])} · "
        f"<span class='pill'>{esc(status)}</span> {buttons}</div>"
    )


def payments_action(
    api: Api,
    ctx: RequestContext,
    parts: list[str],
    text: Callable[[str], str],
    to_minor: Callable[[str, str], int],
) -> str | None:
    """Run a payments form of the dashboard; its notice, or None if the path is not one."""
    if len(parts) != 4:
        return None
    _, kind, obj_id, verb = parts
    if (kind, verb) == ("charges", "refund"):
        charge = api.payments.get("charges", obj_id)
        params: dict[str, Any] = {"charge": obj_id}
        if text("amount"):
            params["amount"] = to_minor(text("amount"), charge["currency"])
        refund = api.refunds.refund_create(params, ctx)
        amount = format_amount(int(refund["amount"]), refund["currency"])
        return f"Refunded {amount} ({refund['status']})."
    if (kind, verb) == ("charges", "dispute"):
        dispute = api.disputes.dispute_open(obj_id, reason=text("reason") or "fraudulent")
        return f"Dispute {dispute['id']} opened."
    if (kind, verb) == ("refunds", "transition"):
        refund = api.refunds.refund_transition(obj_id, text("to"), ctx=ctx)
        return f"Refund {refund['id']} {refund['status']}."
    if (kind, verb) == ("disputes", "decide"):
        dispute = api.disputes.dispute_decide(obj_id, won=text("outcome") == "won")
        return f"Dispute {dispute['id']} {dispute['status']}."
    return None
