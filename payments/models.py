"""Orders, their lines and the webhook event log.

A pending goods order holds its stock through store's reservations, under the key
`reservation_holder(order.pk)`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

# Refunds, disputes and the books' differences live in their own module (this one is long
# enough); imported here so that Django registers them with the app's other models.
from payments.money_records import BooksDifference as BooksDifference
from payments.money_records import Dispute as Dispute
from payments.money_records import Refund as Refund
from payments.money_records import staff_member

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def reservation_holder(order_id: int) -> str:
    """The key under which an order's stock is reserved in store (store.Reservation.holder)."""
    return f"order:{order_id}"


def idempotency_token() -> str:
    """A new order's own random part of its Stripe idempotency keys (see Order)."""
    return secrets.token_hex(16)


class StripeEvent(models.Model):
    """Every verified webhook delivery, once per Stripe event id."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"
        # About a payment no order has yet (a refund or dispute made before the shop saw the
        # payment): kept, and applied when the order appears (payments.money_look).
        WAITING = "waiting", "Waiting for its order"

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=255, db_index=True)
    payload = models.JSONField()
    stripe_created = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    # When and by whom it was taken: a `shop_worker` (`Worker.id`) whose heartbeat stopped
    # loses its claims at once; a claim by anyone else (the admin's replay, a command) is
    # taken again after STALE_CLAIM.
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class OrderQuerySet(models.QuerySet["Order"]):
    def paid(self) -> OrderQuerySet:
        """Orders whose money was taken and not all given back."""
        return self.filter(status__in=Order.PAID_STATUSES)

    def for_user(self, user: User) -> OrderQuerySet:
        return self.filter(user=user).exclude(status=Order.Status.FAILED)


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        # Checkout completed with a delayed payment (a bank transfer) not yet arrived: the
        # order has left its cart and holds its stock until Stripe says paid or failed.
        PROCESSING = "processing", "Awaiting your bank transfer"
        PAID = "paid", "Paid"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Checkout failed"
        # Paid but not fillable: the refund is queued and marked done with Stripe's answer.
        REFUND_PENDING = "refund_pending", "Paid, not filled: refund under way"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partly refunded"

    # Money was taken and not all of it given back.
    PAID_STATUSES = (Status.PAID, Status.PARTIALLY_REFUNDED)

    class Kind(models.TextChoices):
        GOODS = "goods"
        ACCESS = "access", "Members' area access"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    # The cart that checked out: emptied when the order is paid.
    cart = models.ForeignKey(
        "cart.Cart", null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.GOODS)
    status = models.CharField(
        max_length=24, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # Text, not a bounded column: whatever Stripe collected (an email address of up to 512
    # characters, address fields of up to 5,000) must never make fulfilment fail.
    email = models.TextField(blank=True)
    # Where the checkout came from: limits what one address may hold at once.
    client_ip = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    currency = models.CharField(max_length=3)
    amount_total = models.BigIntegerField(default=0, help_text="In minor units, as Stripe charged.")
    # The rest of Stripe's breakdown of the total, as the paid Checkout Session reports it
    # (subtotal - discount + shipping + tax = total). Zero until paid.
    amount_subtotal = models.BigIntegerField(default=0)
    amount_discount = models.BigIntegerField(default=0)
    amount_shipping = models.BigIntegerField(default=0)
    amount_tax = models.BigIntegerField(default=0)
    # Money given back, as Stripe says it: its refunds of the payment that `succeeded`
    # (re-read from Stripe, never the payload). A refund that fails later lowers it again.
    amount_refunded = models.BigIntegerField(default=0)
    # Refunds asked for and not (yet) money returned: requested with no answer, pending or
    # needing action at Stripe. Counted against what is left to refund.
    amount_refunding = models.BigIntegerField(default=0)
    # Money taken back by disputes the shop lost (Stripe's word, payments.disputes).
    amount_disputed = models.BigIntegerField(default=0)
    # What staff must look at (a refund that failed, a dispute): shown in the admin until a
    # member of staff marks it dealt with.
    attention = models.TextField(blank=True)
    promotion_code = models.TextField(blank=True)
    # Where a goods order goes, as collected by Checkout: text of any length, as above (a
    # 300-character name or a 40-character postal code once failed a paid order's fulfilment
    # on PostgreSQL). The country is Stripe's two-letter code.
    shipping_name = models.TextField(blank=True)
    shipping_line1 = models.TextField(blank=True)
    shipping_line2 = models.TextField(blank=True)
    shipping_city = models.TextField(blank=True)
    shipping_postal_code = models.TextField(blank=True)
    shipping_state = models.TextField(blank=True)
    shipping_country = models.CharField(max_length=2, blank=True)
    shipping_rate_id = models.CharField(max_length=255, blank=True)
    shipping_rate_name = models.TextField(blank=True)
    # Set by staff when the parcel leaves.
    shipped_at = models.DateTimeField(null=True, blank=True)
    carrier = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=128, blank=True)
    # The order's Stripe idempotency keys are built from this, never from its id alone: a
    # reset or restored database hands ids out again, and within Stripe's 24 h key window an
    # id-derived key would be answered with the old order's session or refund. Random, made
    # with the order, never changed (a retry must send the same key).
    idempotency_token = models.CharField(
        max_length=32, unique=True, default=idempotency_token, editable=False
    )
    # Which Checkout Session create this order is on (payments.sessions): each attempt sends
    # its own idempotency key, since Stripe replays a failed create's error to its key; and
    # whether Stripe answered that attempt with such an error (the next ask starts another).
    checkout_attempt = models.PositiveSmallIntegerField(default=1, editable=False)
    checkout_attempt_failed = models.BooleanField(default=False, editable=False)
    stripe_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    # While pending and before this moment, the order's reservations hold stock for the
    # shopper (and its Checkout Session stays open).
    reserved_until = models.DateTimeField(null=True, blank=True)
    # While processing (a delayed payment on its way): when the sweep next asks Stripe about
    # it, in case its events never come (payments.delayed.delayed_payment_next_check).
    stripe_check_at = models.DateTimeField(null=True, blank=True)
    # Why a paid order could not be filled (and was refunded), or why checkout failed.
    problem = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "reserved_until"]),
            models.Index(fields=["status", "stripe_check_at"], name="order_status_check_at"),
            # The staff home: sales by day (every column it reads, so the index alone
            # answers), what is still to ship, and the few orders that need staff.
            models.Index(
                fields=[
                    "paid_at",
                    "currency",
                    "status",
                    "amount_total",
                    "amount_refunded",
                    "amount_disputed",
                ],
                name="order_paid_at",
            ),
            models.Index(
                fields=["status"],
                condition=Q(kind="goods", shipped_at__isnull=True),
                name="order_to_ship",
            ),
            models.Index(fields=["id"], condition=~Q(attention=""), name="order_needs_staff"),
        ]
        permissions = [
            ("ship_order", "Can mark orders shipped"),
            ("refund_order", "Can refund orders"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    @property
    def subtotal(self) -> int:
        return sum(line.line_total for line in self.lines.all())

    @property
    def shipping_address_lines(self) -> list[str]:
        """The address as printed on a parcel in its country, one line each, the last the
        country's name (empty if none was collected)."""
        from payments.addresses import Address, address_lines

        return address_lines(
            Address(
                name=self.shipping_name,
                line1=self.shipping_line1,
                line2=self.shipping_line2,
                city=self.shipping_city,
                postal_code=self.shipping_postal_code,
                state=self.shipping_state,
                country=self.shipping_country,
            )
        )

    def idempotency_key(self, purpose: str) -> str:
        """The key of this order's one Stripe request for `purpose` ("checkout", "refund"):
        the same for every retry of that request, and no other order's."""
        return f"amazin-{purpose}-order-{self.idempotency_token}"

    @property
    def refundable(self) -> int:
        """What is left to refund: not given back, not on its way back, not lost in a dispute."""
        taken = self.amount_refunded + self.amount_refunding + self.amount_disputed
        return max(0, self.amount_total - taken)

    @property
    def is_paid(self) -> bool:
        """Money was taken and not all of it given back."""
        return self.status in self.PAID_STATUSES


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        "store.Product", on_delete=models.PROTECT, related_name="order_lines"
    )
    stripe_price_id = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    unit_amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="orderline_quantity_positive"
            ),
            models.UniqueConstraint(fields=["order", "product"], name="orderline_one_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product}"

    @property
    def line_total(self) -> int:
        return self.unit_amount * self.quantity


class StripeCheckpoint(models.Model):
    """How far a reader of Stripe's Events API has got (one row per reader, by name)."""

    name = models.CharField(max_length=64, unique=True)
    # `created` (Unix seconds) up to which every event has been seen and recorded.
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.position}"


class OrderEvent(models.Model):
    """An order's history: who did what, and when."""

    class Kind(models.TextChoices):
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        REFUND_REQUESTED = "refund_requested", "Refund requested"
        REFUND_PENDING = "refund_pending", "Refund pending at Stripe"
        REFUND_REQUIRES_ACTION = "refund_requires_action", "Refund needs action at Stripe"
        REFUNDED = "refunded", "Refunded"
        REFUND_FAILED = "refund_failed", "Refund failed"
        REFUND_CANCELED = "refund_canceled", "Refund canceled"
        STOCK_RESTORED = "stock_restored", "Stock restored"
        DISPUTE_OPENED = "dispute_opened", "Dispute opened"
        DISPUTE_UPDATED = "dispute_updated", "Dispute updated"
        DISPUTE_WON = "dispute_won", "Dispute won"
        DISPUTE_LOST = "dispute_lost", "Dispute lost"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    message = models.TextField(blank=True)
    amount = models.BigIntegerField(null=True, blank=True)
    actor = staff_member()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} (order #{self.order_id})"


class Worker(models.Model):
    """A running `shop_worker` and its heartbeat (payments/worker.py).

    What a worker claims (a task, a Stripe event) names it; once its `beat_at` is older than
    `WORKER_LEASE_SECONDS` (killed, frozen, cut off from the database), another worker takes
    its claims over.
    """

    id = models.CharField(max_length=64, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.id} ({self.host}:{self.pid})"
