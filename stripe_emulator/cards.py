"""Stripe's test card numbers and the outcome each one produces."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from http import HTTPStatus

# number -> (brand, funding); these pay.
SUCCESS_CARDS = {
    "4242424242424242": ("visa", "credit"),
    "4000056655665556": ("visa", "debit"),
    "5555555555554444": ("mastercard", "credit"),
    "378282246310005": ("amex", "credit"),
    # These pay, then do what Stripe's testing page says of them (BEHAVIOURS).
    "4000000000005126": ("visa", "credit"),
    "4000000000007726": ("visa", "credit"),
    "4000000000000259": ("visa", "credit"),
    "4000000000002685": ("visa", "credit"),
    "4000000000001976": ("visa", "credit"),
}

# What happens after a card pays (Stripe's "Testing" page, refunds and disputes):
# - refund_fail: a refund starts `succeeded` and fails later (refund.failed);
# - refund_pending: a refund starts `pending` and succeeds later;
# - dispute_*: the charge succeeds, then is disputed (fraudulent, product not received,
#   or an inquiry). "Later" is refunds.py's REFUND_DELAY on the emulator's clock.
BEHAVIOURS = {
    "4000000000005126": "refund_fail",
    "4000000000007726": "refund_pending",
    "4000000000000259": "dispute_fraudulent",
    "4000000000002685": "dispute_product_not_received",
    "4000000000001976": "dispute_inquiry",
}

# Stripe's test PaymentMethod ids (for `PaymentIntent.create(payment_method=...)`), by the
# test card each stands for.
PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_refundFail": "4000000000005126",
    "pm_card_pendingRefund": "4000000000007726",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createDisputeProductNotReceived": "4000000000002685",
    "pm_card_createDisputeInquiry": "4000000000001976",
}

# number -> (code, decline_code, message); these are declined by the "issuer".
DECLINED_CARDS = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
}


@dataclass(frozen=True)
class Card:
    """A card that was accepted."""

    brand: str
    funding: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    behaviour: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "brand": self.brand,
            "funding": self.funding,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "fingerprint": self.fingerprint,
        }


class CardError(Exception):
    """A payment that did not go through; ``status`` is what the page answers."""

    def __init__(self, code: str, message: str, status: int, decline_code: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.decline_code = decline_code


def parse_expiry(value: str) -> tuple[int, int]:
    """``"12 / 34"``, ``"12/2034"`` or ``"1234"`` -> (12, 2034)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) == 4:
        month, year = int(digits[:2]), 2000 + int(digits[2:])
    elif len(digits) == 6:
        month, year = int(digits[:2]), int(digits[2:])
    else:
        raise CardError(
            "incomplete_expiry",
            "Your card's expiration date is incomplete.",
            HTTPStatus.BAD_REQUEST,
        )
    if not 1 <= month <= 12:
        raise CardError(
            "invalid_expiry_month",
            "Your card's expiration month is invalid.",
            HTTPStatus.BAD_REQUEST,
        )
    return month, year


def charge_card(number: str, expiry: str, cvc: str) -> Card:
    """Decide the outcome for a test card, as Stripe's test mode does."""
    number = "".join(ch for ch in number if not ch.isspace() and ch != "-")
    if number not in SUCCESS_CARDS and number not in DECLINED_CARDS:
        raise CardError(
            "incorrect_number", "Your card number is incorrect.", HTTPStatus.BAD_REQUEST
        )
    month, year = parse_expiry(expiry)
    today = time.gmtime()
    if (year, month) < (today.tm_year, today.tm_mon):
        raise CardError(
            "invalid_expiry_year",
            "Your card's expiration year is in the past.",
            HTTPStatus.BAD_REQUEST,
        )
    cvc = cvc.strip()
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise CardError(
            "incomplete_cvc", "Your card's security code is incomplete.", HTTPStatus.BAD_REQUEST
        )
    if number in DECLINED_CARDS:
        code, decline_code, message = DECLINED_CARDS[number]
        raise CardError(code, message, HTTPStatus.PAYMENT_REQUIRED, decline_code)
    brand, funding = SUCCESS_CARDS[number]
    fingerprint = hashlib.sha256(number.encode()).hexdigest()[:16]
    return Card(brand, funding, number[-4:], month, year, fingerprint, BEHAVIOURS.get(number, ""))
