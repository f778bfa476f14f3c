"""Refunds: create, retrieve, list, cancel, and what happens to them later.

A refund has Stripe's statuses: `pending`, `requires_action`, `succeeded`,
`failed`, `canceled`. The charge's `amount_refunded` counts every refund that
is not failed or canceled, so a refund that fails (or is canceled) gives its
amount back to the charge, and `refunded` follows.

Which way a refund goes depends on the card that paid (cards.BEHAVIOURS, from
Stripe's testing page): most succeed at once (and the card network's reference
arrives just after, a `refund.updated`); 4000 0000 0000 5126
(`pm_card_refundFail`) starts `succeeded` and fails later; 4000 0000 0000 7726
(`pm_card_pendingRefund`) starts `pending` and succeeds later. "Later" is
REFUND_DELAY seconds on the emulator's clock after the refund was made
(`POST /_emulator/clock/advance` moves it; the sweeper and every refund read
look). Tests and the dashboard can also move any refund on by hand
(:meth:`Refunds.refund_transition`): pending -> requires_action, succeeded or
failed; requires_action -> pending, succeeded, failed or canceled; succeeded ->
failed.

Events: `refund.created` and `charge.refunded` when it is made; on each change
of a refund, `refund.updated` then `charge.refund.updated` (both carry the
refund and `previous_attributes`), and `refund.failed` after them when it
failed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from http import HTTPStatus

from stripe_emulator import payment_objects
from stripe_emulator.events import Events
from stripe_emulator.listing import Resource, Route
from stripe_emulator.params import (
    AUTOMATIC,
    ApiError,
    Obj,
    Params,
    RequestContext,
    apply_metadata,
    changed,
    check_known,
    format_amount,
    missing,
    to_int,
    to_str,
)
from stripe_emulator.store import Store, new_id

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = (
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
)
# Seconds on the emulator's clock before a test card's refund changes by itself.
REFUND_DELAY = 60
# The refund statuses that hold money back from the charge.
COUNTED = ("pending", "requires_action", "succeeded")
MOVES = {
    "pending": ("requires_action", "succeeded", "failed"),
    "requires_action": ("pending", "succeeded", "failed", "canceled"),
    "succeeded": ("failed",),
}


class Refunds(Resource):
    def __init__(self, store: Store, events: Events) -> None:
        super().__init__(store)
        self.emit = events.emit
        # Set by Api: whether a charge's dispute stops it being refunded.
        self.refund_blocked: Callable[[Obj], str | None] = lambda charge: None

    def routes(self) -> list[Route]:
        return [
            ("POST", "/v1/refunds", lambda p, c: self.refund_create(p, c)),
            ("GET", "/v1/refunds", lambda p, c: self.refund_list(p)),
            ("GET", "/v1/refunds/{id}", lambda p, c, id: self.refund_retrieve(id, p)),
            ("POST", "/v1/refunds/{id}/cancel", lambda p, c, id: self.refund_cancel(id, p, c)),
        ]

    # reads ---------------------------------------------------------------------

    def refund_retrieve(self, refund_id: str, params: Params) -> Obj:
        with self.store.lock:
            self.settle_due()
            return self.retrieve("refunds", refund_id, params)

    def refund_list(self, params: Params) -> Obj:
        with self.store.lock:
            keys = ("charge", "payment_intent")
            filters = self.list_filters(params, keys)
            self.settle_due()
            filters += [(key, "eq", params[key]) for key in keys if key in params]
            return self.paginate("refunds", filters, params, "/v1/refunds")

    # create ----------------------------------------------------------------------

    def refund_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, ("payment_intent", "charge", "amount", "reason", "metadata"))
            charge = self._refund_charge(params)
            blocked = self.refund_blocked(charge)
            if blocked:
                raise ApiError(HTTPStatus.BAD_REQUEST, blocked, code="charge_disputed")
            remaining = int(charge["amount"]) - int(charge["amount_refunded"])
            if remaining <= 0:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Charge {charge['id']} has already been refunded.",
                    code="charge_already_refunded",
                )
            amount = remaining
            if "amount" in params:
                amount = to_int(params["amount"], "amount", minimum=1)
            if amount > remaining:
                currency = charge["currency"]
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Refund amount ({format_amount(amount, currency)}) is greater than "
                    f"unrefunded amount on charge ({format_amount(remaining, currency)})",
                    param="amount",
                )
            reason = params.get("reason")
            if reason is not None and reason not in REFUND_REASONS:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "Invalid reason: must be one of duplicate, fraudulent, or "
                    "requested_by_customer",
                    param="reason",
                )
            now = self.store.now()
            refund = payment_objects.refund(
                now=now,
                amount=amount,
                charge_obj=charge,
                reason=reason,
                metadata=apply_metadata({}, params.get("metadata", {})),
            )
            behaviour = charge.get("_behaviour", "")
            if behaviour == "refund_pending":
                refund.update(status="pending", pending_reason="processing")
                refund.update(_due=now + REFUND_DELAY, _due_to="succeeded")
            elif behaviour == "refund_fail":
                refund.update(_due=now + REFUND_DELAY, _due_to="failed")
            before = copy.deepcopy(charge)
            self._recount(charge, extra=amount)
            self.store.put("refunds", refund)
            self.store.put("charges", charge)
            self.emit("refund.created", refund, ctx)
            self.emit("charge.refunded", charge, ctx, changed(before, charge))
            if refund["status"] == "succeeded" and "_due" not in refund:
                # The card network's reference for the refund arrives (at Stripe, a little later).
                previous = copy.deepcopy(refund)
                destination = refund["destination_details"]
                destination[destination["type"]].update(
                    reference=new_id("", 12).upper(), reference_status="available"
                )
                self.store.put("refunds", refund)
                self._updated(refund, previous, ctx)
            self.store.save()
            return self.render(refund, params.get("expand"))

    def _refund_charge(self, params: Params) -> Obj:
        if params.get("charge"):
            return self.get("charges", to_str(params["charge"], "charge"), "charge")
        if not params.get("payment_intent"):
            raise missing("payment_intent")
        intent = self.get(
            "payment_intents", to_str(params["payment_intent"], "payment_intent"), "payment_intent"
        )
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "This PaymentIntent does not have a successful charge to refund.",
                param="payment_intent",
            )
        return self.get("charges", intent["latest_charge"], "payment_intent")

    def _recount(self, charge: Obj, extra: int = 0) -> None:
        """The charge's `amount_refunded` from its refunds that still hold money back."""
        refunds = self.store.find("refunds", [("charge", "eq", charge["id"])])
        held = sum(int(r["amount"]) for r in refunds if r["status"] in COUNTED)
        charge["amount_refunded"] = held + extra
        charge["refunded"] = charge["amount_refunded"] >= int(charge["amount"])

    def _updated(self, refund: Obj, previous: Obj, ctx: RequestContext) -> None:
        diff = changed(previous, refund)
        self.emit("refund.updated", refund, ctx, diff)
        self.emit("charge.refund.updated", refund, ctx, diff)

    # later -------------------------------------------------------------------------

    def refund_cancel(self, refund_id: str, params: Params, ctx: RequestContext) -> Obj:
        """`POST /v1/refunds/{id}/cancel`: only a refund that `requires_action`."""
        with self.store.lock:
            check_known(params, ())
            self.settle_due()
            refund = self.get("refunds", refund_id)
            if refund["status"] != "requires_action":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Refund {refund_id} has a status of {refund['status']}; only a refund "
                    "with a status of requires_action can be canceled.",
                    code="refund_cancel_unsupported",
                )
            refund = self.refund_transition(refund_id, "canceled", ctx=ctx)
            return self.render(refund, params.get("expand"))

    def refund_transition(
        self,
        refund_id: str,
        to: str,
        *,
        failure_reason: str | None = None,
        ctx: RequestContext = AUTOMATIC,
    ) -> Obj:
        """Move a refund on (MOVES), give the charge its money back if it failed."""
        with self.store.lock:
            refund = self.get("refunds", refund_id)
            if to not in MOVES.get(refund["status"], ()):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"A {refund['status']} refund cannot become {to}.",
                    param="status",
                )
            reason = failure_reason or ("merchant_request" if to == "canceled" else "declined")
            if reason not in FAILURE_REASONS:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"failure_reason is one of {', '.join(FAILURE_REASONS)}.",
                    param="failure_reason",
                )
            previous = copy.deepcopy(refund)
            refund.pop("_due", None)
            refund.pop("_due_to", None)
            refund["status"] = to
            refund["pending_reason"] = "processing" if to == "pending" else None
            refund["next_action"] = None
            if to == "requires_action":
                refund["next_action"] = {
                    "type": "display_details",
                    "display_details": {
                        "email_sent": {
                            "email_sent_at": self.store.now(),
                            "email_sent_to": "customer@example.com",
                        },
                        "expires_at": self.store.now() + 30 * 86400,
                    },
                }
            if to in ("failed", "canceled"):
                refund.update(failure_reason=reason, failure_balance_transaction=new_id("txn_"))
            self.store.put("refunds", refund)
            charge = self.store.get("charges", str(refund["charge"]))
            if charge is not None:
                self._recount(charge)
                self.store.put("charges", charge)
            self._updated(refund, previous, ctx)
            if to == "failed":
                self.emit("refund.failed", refund, ctx)
            self.store.save()
            return refund

    def settle_due(self) -> int:
        """The test cards' refunds whose time has come change (REFUND_DELAY)."""
        with self.store.lock:
            now = self.store.now()
            # `_due` is indexed (store.INDEXED_FIELDS): this reads only the refunds due.
            due = self.store.find("refunds", [("_due", "lte", now)])
            for refund in sorted(due, key=lambda r: (r["_due"], r["_seq"])):
                to = refund["_due_to"]
                reason = "expired_or_canceled_card" if to == "failed" else None
                self.refund_transition(refund["id"], to, failure_reason=reason)
            return len(due)

    def refunds_of(self, charge_id: str) -> list[Obj]:
        with self.store.lock:
            self.settle_due()
            return self.store.find("refunds", [("charge", "eq", charge_id)])
