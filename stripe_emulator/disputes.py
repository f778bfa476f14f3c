"""Disputes: opened by a test card or the dashboard; list, retrieve, update evidence, close.

How one goes, as Stripe's test mode does it:

- opened: a charge paid with 4000 0000 0000 0259 (`pm_card_createDispute`) is
  disputed as `fraudulent` at once, 4000 0000 0000 2685 as `product_not_received`;
  both are chargebacks (`needs_response`): the money is withdrawn with a $15.00
  fee. 4000 0000 0000 1976 (`pm_card_createDisputeInquiry`) opens an inquiry
  (`warning_needs_response`): no money moves. The dashboard opens one on any
  charge, with a reason. Events: `charge.dispute.created`, then (a chargeback)
  `charge.dispute.funds_withdrawn`; the charge reads `disputed: true`.
- evidence (`POST /v1/disputes/{id}`): merged into `evidence`; with `submit`
  (the default) the dispute goes `under_review` (`warning_under_review`) and
  `submission_count` goes up: `charge.dispute.updated`. Stripe's test evidence
  decides it: `uncategorized_text` "winning_evidence" wins, "losing_evidence"
  loses, at once (Stripe: a few minutes later).
- closed (`POST /v1/disputes/{id}/close`): the merchant accepts it: `lost`
  (an inquiry: `warning_closed`), `charge.dispute.closed`.
- decided by the bank (the dashboard's Won/Lost, or the test evidence): won:
  `charge.dispute.closed` then `charge.dispute.funds_reinstated` (a chargeback's
  money and fee come back); lost: `charge.dispute.closed`.

A charge under a chargeback cannot be refunded (`charge_disputed`), as at Stripe.
"""

from __future__ import annotations

import copy
from http import HTTPStatus

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
    to_bool,
    to_str,
)
from stripe_emulator.store import Store, new_id

EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
REASONS = ("fraudulent", "product_not_received", "general", "duplicate", "unrecognized")
BY_BEHAVIOUR = {
    "dispute_fraudulent": ("fraudulent", False),
    "dispute_product_not_received": ("product_not_received", False),
    "dispute_inquiry": ("fraudulent", True),
}
NETWORK_CODES = {"fraudulent": "10.4", "product_not_received": "13.1"}
DISPUTE_FEE = 1500
# Evidence is due a week after the dispute opens (Stripe's deadlines vary by network).
RESPONSE_WINDOW = 7 * 86400
OPEN = ("needs_response", "warning_needs_response")
REVIEW = ("under_review", "warning_under_review")


class Disputes(Resource):
    def __init__(self, store: Store, events: Events) -> None:
        super().__init__(store)
        self.emit = events.emit

    def routes(self) -> list[Route]:
        return [
            ("GET", "/v1/disputes", lambda p, c: self.dispute_list(p)),
            ("GET", "/v1/disputes/{id}", lambda p, c, id: self.retrieve("disputes", id, p)),
            ("POST", "/v1/disputes/{id}", lambda p, c, id: self.dispute_update(id, p, c)),
            ("POST", "/v1/disputes/{id}/close", lambda p, c, id: self.dispute_close(id, p, c)),
        ]

    def dispute_list(self, params: Params) -> Obj:
        with self.store.lock:
            keys = ("charge", "payment_intent")
            filters = self.list_filters(params, keys)
            filters += [(key, "eq", params[key]) for key in keys if key in params]
            return self.paginate("disputes", filters, params, "/v1/disputes")

    # opening -------------------------------------------------------------------------

    def on_charge(self, charge: Obj) -> None:
        """A test card that disputes the charge it paid does it now."""
        found = BY_BEHAVIOUR.get(charge.get("_behaviour", ""))
        if found is not None:
            self.dispute_open(charge["id"], reason=found[0], inquiry=found[1])

    def dispute_open(self, charge_id: str, *, reason: str, inquiry: bool = False) -> Obj:
        with self.store.lock:
            charge = self.get("charges", charge_id, "charge")
            if reason not in REASONS:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"reason is one of {', '.join(REASONS)}.")
            if charge["status"] != "succeeded" or charge["disputed"]:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Charge {charge_id} cannot be disputed (already disputed, or not paid).",
                )
            now = self.store.now()
            amount = int(charge["amount"]) - (0 if inquiry else int(charge["amount_refunded"]))
            card = (charge.get("payment_method_details") or {}).get("card") or {}
            dispute: Obj = {
                "id": new_id("dp_"),
                "object": "dispute",
                "amount": amount,
                "balance_transactions": [],
                "charge": charge_id,
                "created": now,
                "currency": charge["currency"],
                "enhanced_eligibility_types": [],
                "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
                "evidence_details": {
                    "due_by": now + RESPONSE_WINDOW,
                    "enhanced_eligibility": {},
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "intended_submission_method": None,
                "is_charge_refundable": inquiry,
                "livemode": False,
                "metadata": {},
                "network_reason_code": NETWORK_CODES.get(reason, "10.4"),
                "payment_intent": charge["payment_intent"],
                "payment_method_details": {
                    "card": {
                        "brand": card.get("brand", "visa"),
                        "case_type": "inquiry" if inquiry else "chargeback",
                        "network_reason_code": NETWORK_CODES.get(reason, "10.4"),
                    },
                    "type": "card",
                },
                "reason": reason,
                "status": "warning_needs_response" if inquiry else "needs_response",
            }
            charge["disputed"] = True
            self.store.put("charges", charge)
            self.store.put("disputes", dispute)
            self.emit("charge.dispute.created", dispute, AUTOMATIC)
            if not inquiry:
                dispute["balance_transactions"].append(
                    self._balance(dispute, -amount, DISPUTE_FEE, "Chargeback withdrawal")
                )
                self.store.put("disputes", dispute)
                self.emit("charge.dispute.funds_withdrawn", dispute, AUTOMATIC)
            self.store.save()
            return dispute

    def _balance(self, dispute: Obj, amount: int, fee: int, description: str) -> Obj:
        now = self.store.now()
        return {
            "id": new_id("txn_"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": now,
            "balance_type": "payments",
            "created": now,
            "currency": dispute["currency"],
            "description": f"{description} for {dispute['charge']}",
            "exchange_rate": None,
            "fee": fee,
            "fee_details": [
                {
                    "amount": fee,
                    "application": None,
                    "currency": dispute["currency"],
                    "description": "Dispute fee",
                    "type": "stripe_fee",
                }
            ],
            "net": amount - fee,
            "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
            "source": dispute["id"],
            "status": "available",
            "type": "adjustment",
        }

    # the merchant's answer -------------------------------------------------------------

    def dispute_update(self, dispute_id: str, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, ("evidence", "metadata", "submit"))
            dispute = self.get("disputes", dispute_id)
            before = copy.deepcopy(dispute)
            if "metadata" in params:
                dispute["metadata"] = apply_metadata(dispute["metadata"], params["metadata"])
            evidence = params.get("evidence") or {}
            submit = to_bool(params.get("submit", True), "submit")
            if evidence or (submit and "evidence" in params):
                if dispute["status"] not in OPEN:
                    raise ApiError(
                        HTTPStatus.BAD_REQUEST,
                        f"This dispute has a status of {dispute['status']}: evidence can only "
                        "be given while it needs a response.",
                        param="evidence",
                    )
                check_known(evidence, EVIDENCE_FIELDS)
                for key, value in evidence.items():
                    dispute["evidence"][key] = to_str(value, f"evidence[{key}]") or None
                dispute["evidence_details"]["has_evidence"] = True
                if submit:
                    dispute["evidence_details"]["submission_count"] += 1
                    dispute["status"] = REVIEW[OPEN.index(dispute["status"])]
            diff = changed(before, dispute)
            if diff:
                self.store.put("disputes", dispute)
                self.emit("charge.dispute.updated", dispute, ctx, diff)
            answer = self.render(dispute, params.get("expand"))
            text = dispute["evidence"]["uncategorized_text"] or ""
            if dispute["status"] in REVIEW and text in ("winning_evidence", "losing_evidence"):
                self.dispute_decide(dispute_id, won=text == "winning_evidence")
            self.store.save()
            return answer

    def dispute_close(self, dispute_id: str, params: Params, ctx: RequestContext) -> Obj:
        """The merchant accepts the dispute: lost (an inquiry: closed)."""
        with self.store.lock:
            check_known(params, ())
            dispute = self.get("disputes", dispute_id)
            if dispute["status"] not in OPEN:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"This dispute is already {dispute['status']} and cannot be closed.",
                )
            before = copy.deepcopy(dispute)
            inquiry = dispute["status"] == "warning_needs_response"
            dispute["status"] = "warning_closed" if inquiry else "lost"
            self.store.put("disputes", dispute)
            self.emit("charge.dispute.closed", dispute, ctx, changed(before, dispute))
            self.store.save()
            return self.render(dispute, params.get("expand"))

    def dispute_decide(self, dispute_id: str, *, won: bool) -> Obj:
        """The bank decides (the dashboard, or Stripe's test evidence)."""
        with self.store.lock:
            dispute = self.get("disputes", dispute_id)
            if dispute["status"] not in (*OPEN, *REVIEW):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST, f"This dispute is already {dispute['status']}."
                )
            before = copy.deepcopy(dispute)
            inquiry = dispute["status"].startswith("warning_")
            if inquiry:
                dispute["status"] = "warning_closed"
            else:
                dispute["status"] = "won" if won else "lost"
            self.store.put("disputes", dispute)
            self.emit("charge.dispute.closed", dispute, AUTOMATIC, changed(before, dispute))
            if won and not inquiry:
                amount = int(dispute["amount"])
                dispute["balance_transactions"].append(
                    self._balance(dispute, amount, -DISPUTE_FEE, "Chargeback reversal")
                )
                self.store.put("disputes", dispute)
                self.emit("charge.dispute.funds_reinstated", dispute, AUTOMATIC)
            self.store.save()
            return dispute

    def refund_blocked(self, charge: Obj) -> str | None:
        """Why a charge cannot be refunded: a chargeback took its money."""
        if not charge.get("disputed"):
            return None
        for dispute in self.store.find("disputes", [("charge", "eq", charge["id"])]):
            if not dispute["is_charge_refundable"] and dispute["status"] not in ("won",):
                return f"Charge {charge['id']} has been charged back; cannot issue a refund."
        return None
