"""Refunds and disputes of an order's payment, and the differences `check_books` finds
between the shop's books and Stripe's. Registered with payments' other models
(payments.models imports them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def dashboard_url(stripe_id: str, *, livemode: bool | None = None) -> str:
    """Where staff see a payment (a PaymentIntent or charge id) in Stripe's dashboard; in
    test mode unless `livemode` (None: as the shop's own key is)."""
    if not stripe_id:
        return ""
    if livemode is None:
        livemode = settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
    base = settings.STRIPE_DASHBOARD_URL.rstrip("/")
    return f"{base}/{'' if livemode else 'test/'}payments/{stripe_id}"


def staff_member() -> models.ForeignKey[User | None, User | None]:
    """Who on the staff did something recorded on an order (kept if the account goes)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )


class Refund(models.Model):
    """One refund of (part of) an order, as staff asked for it and as Stripe reports it.

    Staff refunds are recorded here before Stripe is called (status `requested`, with the
    idempotency key the call will use), then updated with Stripe's answer; refunds made
    elsewhere (Stripe's dashboard) are recorded when `charge.refunded` is re-read.
    """

    class Status(models.TextChoices):
        # Asked of Stripe, no answer yet (or the answer was lost): counted against what is
        # left to refund until Stripe's word is known (payments.money_look asks again).
        REQUESTED = "requested", "Requested (no answer from Stripe yet)"
        PENDING = "pending", "Pending at Stripe"
        REQUIRES_ACTION = "requires_action", "Needs action at Stripe"
        # The only status in which the money is back with the shopper.
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class Source(models.TextChoices):
        STAFF = "staff", "Staff, in the admin"
        UNFILLED = "unfilled", "The order could not be filled"
        STRIPE = "stripe", "Made at Stripe (its dashboard)"

    order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, related_name="refunds")
    # Zero: lines given back (restocked, a pass revoked) that cost nothing (100 % off); no
    # Stripe refund is made for them.
    amount = models.BigIntegerField(help_text="In minor units.")
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.REQUESTED, db_index=True
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.STAFF)
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # The request's own key (a staff form's token, the unfilled order's key): finds this row
    # again. What is sent to Stripe is `stripe_key`, a new one after each error answer.
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # Which key is in use: 1 is `idempotency_key` itself; each error answer from Stripe (which
    # Stripe keeps and replays for that key) moves to the next, after asking Stripe first.
    attempt = models.PositiveIntegerField(default=1)
    # A request for this refund is on its way to Stripe since then (cleared with its answer):
    # nobody else sends one meanwhile, unless it is older than money_look.IN_FLIGHT (a dead
    # process).
    sent_at = models.DateTimeField(null=True, blank=True)
    # Requests sent to Stripe for it so far: after the first, Stripe is asked what exists
    # before another is sent.
    requests = models.PositiveIntegerField(default=0)
    # When the periodic look next asks Stripe about it (while requested, pending, or needing
    # action); its events normally come first.
    check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    failure_reason = models.CharField(max_length=64, blank=True)
    # {order line id (str): quantity} when staff refunded lines; empty for an amount.
    lines = models.JSONField(default=dict, blank=True)
    restock = models.BooleanField(default=False, help_text="Put the lines' stock back.")
    restocked = models.BooleanField(default=False)
    reason = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_by = staff_member()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not final: Stripe may still change it (or has not answered yet).
    OPEN = (Status.REQUESTED, Status.PENDING, Status.REQUIRES_ACTION)
    # Over: no money moves (any more).
    NOT_MADE = (Status.FAILED, Status.CANCELED)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_amount_not_negative")
        ]

    def __str__(self) -> str:
        return f"Refund {self.stripe_refund_id or self.pk} of order #{self.order_id}"

    @property
    def stripe_key(self) -> str:
        """The idempotency key of this refund's next (or current) request to Stripe."""
        base = self.idempotency_key or f"amazin-refund-{self.pk}"
        return base if self.attempt <= 1 else f"{base}-retry{self.attempt}"


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
