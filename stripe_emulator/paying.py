"""Paying a Checkout Session, and the rest of an open session's life.

Paying is what the hosted page (and the test endpoint) does with a test card
or a bank account: it creates the PaymentIntent and the Charge and completes
the session; a bank transfer settles later. An open session past `expires_at`
expires. Creating, reading and listing sessions is checkout.py.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from stripe_emulator import payment_objects
from stripe_emulator.cards import Card, CardError, charge_card
from stripe_emulator.coupons import Coupons
from stripe_emulator.events import Events
from stripe_emulator.listing import Resource
from stripe_emulator.params import AUTOMATIC, ApiError, Obj, RequestContext, format_amount
from stripe_emulator.pricing import apply_choices, shipping_details
from stripe_emulator.store import Store, new_id

# How a session is paid on the hosted page: a test card, or a US bank account
# that completes the session unpaid and settles later (succeeded or failed).
CARD = "card"
BANK_TRANSFER = "bank_transfer"
# The card a bank transfer's Charge is built from before its details are replaced.
TEST_CARD = Card("visa", "credit", "4242", 12, 2034, "")


class Paying(Resource):
    """The open session's life; Checkout (checkout.py) adds the API's endpoints."""

    def __init__(
        self, store: Store, events: Events, *, public_url: str, coupons: Coupons | None = None
    ) -> None:
        super().__init__(store)
        self.emit = events.emit
        self.public_url = public_url.rstrip("/")
        self.coupons = coupons or Coupons(store)
        # Set by Api: what follows a charge (a test card's dispute).
        self.on_charge: Callable[[Obj], None] = lambda charge: None

    def session(self, session_id: str, param: str = "id") -> Obj:
        """The stored session (private fields included), expired first if due."""
        with self.store.lock:
            self.expire_due_sessions()
            return self.get("checkout_sessions", session_id, param)

    def _expire(self, session: Obj, ctx: RequestContext) -> None:
        session["status"] = "expired"
        session["url"] = None
        self.store.put("checkout_sessions", session)
        self.emit("checkout.session.expired", session, ctx)

    def expire_due_sessions(self) -> int:
        """Expire open sessions past `expires_at`; each fires its event exactly once."""
        with self.store.lock:
            now = self.store.now()
            due = self.store.find(
                "checkout_sessions", [("status", "eq", "open"), ("expires_at", "lte", now)]
            )
            for session in sorted(due, key=lambda s: (s["expires_at"], s["_seq"])):
                self._expire(session, AUTOMATIC)
            if due:
                self.store.save()
            return len(due)

    def session_choose(
        self, session_id: str, *, shipping_rate: str | None, promotion_code: str | None
    ) -> Obj:
        """The hosted page's "Apply": pick a shipping rate, apply (or remove) a code."""
        with self.store.lock:
            session = self.session(session_id)
            if session["status"] != "open":
                return session
            apply_choices(self.coupons, session, shipping_rate, promotion_code, remove_code=True)
            self.store.put("checkout_sessions", session)
            self.store.save()
            return session

    def session_pay(
        self,
        session_id: str,
        *,
        card_number: str = "",
        expiry: str = "",
        cvc: str = "",
        email: str,
        name: str | None,
        method: str = CARD,
        shipping: dict[str, str] | None = None,
        shipping_rate: str | None = None,
        promotion_code: str | None = None,
        shown_total: int | None = None,
    ) -> Obj:
        """Pay an open session; raises CardError when refused.

        `shown_total` is the total the page showed the shopper: when the chosen rate or code
        makes it another amount, nothing is charged; the choices are kept and CardError
        (409 `amount_changed`) asks to confirm the new total. A session whose total is 0
        completes with `payment_status` `no_payment_required`, without a payment.

        `method` is a test card (``card``, the default) or a US bank account
        (``bank_transfer``), which completes the session unpaid and settles
        later (see :meth:`session_settle`). A declined card fails the
        session's PaymentIntent (`payment_intent.payment_failed`) and leaves
        the session open for another try, as Checkout does.

        `shipping` (name, line1, line2, city, postal_code, state, country) is required when
        the session collects an address; `shipping_rate` picks one of its options and
        `promotion_code` applies a code, as the hosted page's fields do. They apply to
        either way of paying.
        """
        declined: CardError | None = None
        with self.store.lock:
            session = self.session(session_id)
            if session["status"] != "open":
                raise CardError(
                    f"session_{session['status']}",
                    "This Checkout Session has expired."
                    if session["status"] == "expired"
                    else "This Checkout Session is already paid.",
                    HTTPStatus.CONFLICT,
                )
            email = email.strip()
            if "@" not in email:
                raise CardError("email_invalid", "Enter a valid email address.", 400)
            name = (name or "").strip() or None
            if method not in (CARD, BANK_TRANSFER):
                raise CardError("payment_method_invalid", "Choose a way to pay.", 400)
            apply_choices(self.coupons, session, shipping_rate, promotion_code)
            details = shipping_details(session, shipping)
            if shown_total is not None and int(session["amount_total"]) != shown_total:
                self.store.put("checkout_sessions", session)
                self.store.save()
                total = format_amount(int(session["amount_total"]), session["currency"])
                raise CardError(
                    "amount_changed",
                    f"The total is now {total} (your shipping method or code changed it). "
                    "Check it and pay again.",
                    HTTPStatus.CONFLICT,
                )
            if int(session["amount_total"]) == 0:
                self._complete_free(session, email, name, details)
            elif method == BANK_TRANSFER:
                self._complete(session, None, email, name, details)
            else:
                try:
                    card = charge_card(card_number, expiry, cvc)
                except CardError as exc:
                    if exc.status != HTTPStatus.PAYMENT_REQUIRED:
                        raise
                    self._payment_failed(session, exc)
                    declined = exc
                else:
                    self._complete(session, card, email, name, details)
            self.store.save()
        if declined is not None:
            raise declined
        return session

    def _intent(self, session: Obj, now: int) -> Obj:
        """The session's PaymentIntent, made on the first attempt to pay."""
        intent_id = session.get("_payment_intent")
        intent = self.store.get("payment_intents", intent_id) if intent_id else None
        if intent is None:
            intent = payment_objects.payment_intent(
                now=now,
                amount=int(session["amount_total"]),
                currency=session["currency"],
                payment_method=None,
                **session.get("_payment_intent_data", {}),
            )
            intent.update(status="requires_payment_method", amount_received=0)
            session["_payment_intent"] = intent["id"]
        # The amount follows the shopper's latest shipping rate and promotion code.
        intent["amount"] = int(session["amount_total"])
        return intent

    def _payment_failed(self, session: Obj, exc: CardError) -> None:
        intent = self._intent(session, self.store.now())
        intent.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error={
                "code": exc.code,
                "decline_code": exc.decline_code,
                "doc_url": f"https://stripe.com/docs/error-codes/{exc.code.replace('_', '-')}",
                "message": exc.message,
                "param": None,
                "payment_method": {"id": new_id("pm_"), "object": "payment_method", "type": "card"},
                "type": "card_error",
            },
        )
        self.store.put("payment_intents", intent)
        self.store.put("checkout_sessions", session)
        self.emit("payment_intent.payment_failed", intent, AUTOMATIC)

    def _customer(self, session: Obj, email: str, name: str | None) -> str | None:
        """Checkout makes a Customer when asked to (`customer_creation=always`)."""
        if session.get("customer_creation") != "always":
            return None
        customer = payment_objects.customer(now=self.store.now(), email=email, name=name)
        self.store.put("customers", customer)
        self.emit("customer.created", customer, AUTOMATIC)
        return str(customer["id"])

    def _complete_free(
        self, session: Obj, email: str, name: str | None, shipping: Obj | None
    ) -> None:
        """A session with nothing to pay (a 100 % code): no PaymentIntent, no charge."""
        customer = self._customer(session, email, name)
        self._session_completed(
            session, "no_payment_required", None, customer, email, name, shipping
        )
        self.emit("checkout.session.completed", session, AUTOMATIC)

    def _session_completed(
        self,
        session: Obj,
        payment_status: str,
        intent_id: str | None,
        customer: str | None,
        email: str,
        name: str | None,
        shipping: Obj | None,
    ) -> None:
        """The session complete, with who paid and where it ships; its codes redeemed."""
        session.update(
            status="complete",
            payment_status=payment_status,
            payment_intent=intent_id,
            customer=customer,
            url=None,
            customer_details=payment_objects.customer_details(email=email, name=name),
            collected_information={
                "business_name": None,
                "individual_name": None,
                "shipping_details": shipping,
            },
        )
        for discount in session.get("discounts") or []:
            self.coupons.redeem(discount["promotion_code"])
        self.store.put("checkout_sessions", session)

    def _complete(
        self, session: Obj, card: Card | None, email: str, name: str | None, shipping: Obj | None
    ) -> None:
        """Complete the session: paid by card, or unpaid until a bank transfer settles."""
        now = self.store.now()
        customer = self._customer(session, email, name)
        payment_method = new_id("pm_")
        amount = int(session["amount_total"])
        intent = self._intent(session, now)
        charge = payment_objects.charge(
            now=now,
            amount=amount,
            currency=session["currency"],
            payment_intent_id=intent["id"],
            payment_method=payment_method,
            card=(card or TEST_CARD).as_dict(),
            email=email,
            name=name,
            receipt_url=f"{self.public_url}/pay/{session['id']}",
        )
        charge["_session"] = session["id"]
        charge["_behaviour"] = card.behaviour if card is not None else ""
        charge["customer"] = customer
        if shipping is not None:
            charge["shipping"] = {
                **shipping,
                "carrier": None,
                "phone": None,
                "tracking_number": None,
            }
        intent.update(
            latest_charge=charge["id"],
            payment_method=payment_method,
            customer=customer,
            last_payment_error=None,
        )
        if card is None:
            fingerprint = new_id("", 16)
            charge.update(
                status="pending",
                paid=False,
                payment_method_details=payment_objects.bank_details(fingerprint=fingerprint),
            )
            charge["outcome"]["seller_message"] = "Payment processing."
            intent.update(
                status="processing", amount_received=0, payment_method_types=["us_bank_account"]
            )
        else:
            intent.update(status="succeeded", amount_received=amount)
        self.store.put("payment_intents", intent)
        self.store.put("charges", charge)
        paid = "paid" if card is not None else "unpaid"
        self._session_completed(session, paid, intent["id"], customer, email, name, shipping)
        # Stripe's order: the charge, its PaymentIntent, then the session.
        if card is not None:
            self.emit("charge.succeeded", charge, AUTOMATIC)
            self.emit("payment_intent.succeeded", intent, AUTOMATIC)
        else:
            self.emit("charge.pending", charge, AUTOMATIC)
            self.emit("payment_intent.processing", intent, AUTOMATIC)
        self.emit("checkout.session.completed", session, AUTOMATIC)
        if card is not None:
            self.on_charge(charge)

    def session_settle(self, session_id: str, *, succeeded: bool) -> Obj:
        """A bank transfer paid at Checkout arrives (or bounces), as days later at Stripe."""
        with self.store.lock:
            session = self.session(session_id)
            intent = self.store.get("payment_intents", session.get("payment_intent") or "")
            if (
                session["status"] != "complete"
                or session["payment_status"] != "unpaid"
                or intent is None
                or intent["status"] != "processing"
            ):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "This Checkout Session has no payment waiting to settle.",
                    param="id",
                )
            charge = self.get("charges", intent["latest_charge"])
            if succeeded:
                charge.update(status="succeeded", paid=True)
                charge["outcome"]["seller_message"] = "Payment complete."
                intent.update(status="succeeded", amount_received=intent["amount"])
                session["payment_status"] = "paid"
                events = (
                    ("charge.succeeded", charge),
                    ("payment_intent.succeeded", intent),
                    ("checkout.session.async_payment_succeeded", session),
                )
            else:
                charge.update(
                    status="failed",
                    paid=False,
                    failure_code="insufficient_funds",
                    failure_message="The customer's account has insufficient funds to cover "
                    "this payment.",
                )
                charge["outcome"].update(
                    network_status="declined_by_network",
                    reason="insufficient_funds",
                    seller_message="The bank returned the payment.",
                    type="issuer_declined",
                )
                intent.update(
                    status="requires_payment_method",
                    amount_received=0,
                    last_payment_error={
                        "code": "payment_method_provider_decline",
                        "decline_code": "insufficient_funds",
                        "doc_url": "https://stripe.com/docs/error-codes/"
                        "payment-method-provider-decline",
                        "message": charge["failure_message"],
                        "param": None,
                        "payment_method": {
                            "id": intent["payment_method"],
                            "object": "payment_method",
                            "type": "us_bank_account",
                        },
                        "type": "card_error",
                    },
                )
                events = (
                    ("charge.failed", charge),
                    ("payment_intent.payment_failed", intent),
                    ("checkout.session.async_payment_failed", session),
                )
            self.store.put("charges", charge)
            self.store.put("payment_intents", intent)
            self.store.put("checkout_sessions", session)
            for event_type, obj in events:
                self.emit(event_type, obj, AUTOMATIC)
            self.store.save()
            return session
