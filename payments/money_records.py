"""Disputes of an order's payment, and the differences `check_books` finds between the shop's
books and Stripe's. Registered with payments' other models (payments.models imports them).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


def dashboard_url(stripe_id: str, *, livemode: bool | None = None) -> str:
    """Where staff see a payment (a PaymentIntent or charge id) in Stripe's dashboard; in
    test mode unless `livemode` (None: as the shop's own key is)."""
    if not stripe_id:
        return ""
    if livemode is None:
        livemode = settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
    base = settings.STRIPE_DASHBOARD_URL.rstrip("/")
    return f"{base}/{'' if livemode else 'test/'}payments/{stripe_id}"


class Dispute(models.Model):
    """A chargeback of an order's payment, as Stripe last said it (payments.disputes).

    Opening one takes the disputed amount back from the shop at once; won, Stripe gives it
    back; lost, it is gone for good (the order's `amount_disputed`). Stock is never touched.
    """

    class Status(models.TextChoices):
        WARNING_NEEDS_RESPONSE = "warning_needs_response", "Inquiry: needs a response"
        WARNING_UNDER_REVIEW = "warning_under_review", "Inquiry: under review"
        WARNING_CLOSED = "warning_closed", "Inquiry closed"
        NEEDS_RESPONSE = "needs_response", "Needs a response"
        UNDER_REVIEW = "under_review", "Under review"
        APPEAL_NEEDS_RESPONSE = "appeal_needs_response", "Appeal: needs a response"
        APPEAL_UNDER_REVIEW = "appeal_under_review", "Appeal: under review"
        WON = "won", "Won"
        LOST = "lost", "Lost"
        PREVENTED = "prevented", "Prevented"

    # Over: nothing more will happen to the money.
    CLOSED = (Status.WON, Status.LOST, Status.WARNING_CLOSED, Status.PREVENTED)

    order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, related_name="disputes")
    stripe_dispute_id = models.CharField(max_length=255, unique=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    amount = models.BigIntegerField(help_text="In minor units.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=32, choices=Status.choices, db_index=True)
    reason = models.CharField(max_length=64, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    livemode = models.BooleanField(default=False)
    # When Stripe opened it, and when the shop last changed this row.
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"Dispute {self.stripe_dispute_id} of order #{self.order_id}"

    @property
    def is_open(self) -> bool:
        return self.status not in self.CLOSED

    @property
    def dashboard_url(self) -> str:
        return dashboard_url(
            self.stripe_payment_intent_id or self.stripe_charge_id, livemode=self.livemode
        )


class BooksDifference(models.Model):
    """One difference between Stripe's books and the shop's, as `check_books` found it.

    Open until a run over its period no longer finds it (`resolved_at`). `key` names it
    (kind and both ids), so a difference found again is the same row, and staff are emailed
    about new ones only.
    """

    class Kind(models.TextChoices):
        CHARGE_WITHOUT_ORDER = "charge_without_order", "A charge no paid order explains"
        ORDER_WITHOUT_CHARGE = "order_without_charge", "A paid order without its charge"
        AMOUNT_DIFFERS = "amount_differs", "Amounts differ"
        REFUND_MISSING_IN_SHOP = "refund_missing_in_shop", "A refund at Stripe the order lacks"
        REFUND_MISSING_AT_STRIPE = "refund_missing_at_stripe", "A refund Stripe does not have"
        REFUND_STATUS_DIFFERS = "refund_status_differs", "A refund's status differs"
        DISPUTE_MISSING_IN_SHOP = "dispute_missing_in_shop", "A dispute the order lacks"
        DISPUTE_MISSING_AT_STRIPE = "dispute_missing_at_stripe", "A dispute Stripe does not have"
        DISPUTE_STATUS_DIFFERS = "dispute_status_differs", "A dispute's status differs"

    key = models.CharField(max_length=600)
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    # Stripe's object (a charge, refund or dispute id), and the shop's ("order #12",
    # "refund #3"), either empty when that side has none.
    stripe_id = models.CharField(max_length=255, blank=True)
    shop_ref = models.CharField(max_length=64, blank=True)
    order = models.ForeignKey(
        "payments.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="books_differences",
    )
    # The Stripe payment it is about, for the dashboard link.
    stripe_payment_id = models.CharField(max_length=255, blank=True)
    livemode = models.BooleanField(default=False)
    message = models.TextField()
    # When the object concerned was made: a run over a period resolves only its own.
    object_created = models.DateTimeField(db_index=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["resolved_at", "-first_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(resolved_at__isnull=True), name="books_one_open_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.stripe_id or '-'} / {self.shop_ref or '-'}"

    @property
    def dashboard_url(self) -> str:
        return dashboard_url(self.stripe_payment_id or self.stripe_id, livemode=self.livemode)
