"""What a user has paid for: access to the members' area, recorded in the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class EntitlementQuerySet(models.QuerySet["Entitlement"]):
    def live(self) -> EntitlementQuerySet:
        return self.filter(revoked_at__isnull=True)


class Entitlement(models.Model):
    class Feature(models.TextChoices):
        MEMBERS_AREA = "members_area", "Members' area"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entitlements"
    )
    feature = models.CharField(max_length=32, choices=Feature.choices, default=Feature.MEMBERS_AREA)
    order = models.ForeignKey(
        "payments.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="entitlements",
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Staff member who granted it by hand; empty when bought.",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=255, blank=True)

    objects = EntitlementQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            # At most one live grant per user and feature, and one grant per paid order.
            models.UniqueConstraint(
                fields=["user", "feature"],
                condition=Q(revoked_at__isnull=True),
                name="entitlement_one_live_per_user",
            ),
            models.UniqueConstraint(
                fields=["order", "feature"],
                condition=Q(order__isnull=False),
                name="entitlement_one_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_feature_display()} for {self.user}"
