"""Orders, their lines and the webhook event log.

A pending goods order holds its stock through store's reservations, under the key
`reservation_holder(order.pk)`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


def reservation_holder(order_id: int) -> str:
    """The key under which an order's stock is reserved in store (store.Reservation.holder)."""
    return f"order:{order_id}"


class StripeEvent(models.Model):
    """Every verified webhook delivery, once per Stripe event id."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

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
    # When a worker took it: a claim older than STALE_CLAIM (the worker died) is taken again.
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class OrderQuerySet(models.QuerySet["Order"]):
    def for_user(self, user: settings.AUTH_USER_MODEL) -> OrderQuerySet:  # type: ignore[valid-type]
        return self.filter(user=user).exclude(status=Order.Status.FAILED)


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        PAID = "paid", "Paid"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Checkout failed"
        # Paid but not fillable: the refund is queued and marked done with Stripe's answer.
        REFUND_PENDING = "refund_pending", "Paid, not filled: refund under way"
        REFUNDED = "refunded", "Refunded"

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
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    email = models.EmailField(blank=True)
    # Where the checkout came from: limits what one address may hold at once.
    client_ip = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    currency = models.CharField(max_length=3)
    amount_total = models.BigIntegerField(default=0, help_text="In minor units, as Stripe charged.")
    stripe_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    # While pending and before this moment, the order's reservations hold stock for the
    # shopper (and its Checkout Session stays open).
    reserved_until = models.DateTimeField(null=True, blank=True)
    # Why a paid order could not be filled (and was refunded), or why checkout failed.
    problem = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "reserved_until"])]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    @property
    def subtotal(self) -> int:
        return sum(line.line_total for line in self.lines.all())


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
