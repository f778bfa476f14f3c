"""What the shop recorded, for staff to read: the webhook event log and the refunds.

Both are records, never edited or deleted here: an event is replayed (an action for those
who may change events), a refund is made from its order's page.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from payments import webhooks
from payments.models import Refund, StripeEvent
from payments.staff_home import refunds_to_check
from store.money import format_money

# Keys whose integer values Stripe sends as Unix times.
TIME_KEYS = {
    "created",
    "date",
    "start",
    "end",
    "available_on",
    "arrival_date",
    "current_period_start",
    "current_period_end",
    "due_by",
    "evidence_due_by",
}
_TIME_LINE = re.compile(r'^(\s*)"(\w+)": (\d{9,11})(,?)$')


def readable_time(value: int) -> str:
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def json_shown(payload: Any) -> SafeString:
    """`payload` indented, each Unix time followed by the date it means, in a box that
    scrolls sideways rather than widening the page."""
    lines = []
    for line in json.dumps(payload, indent=2, sort_keys=False, ensure_ascii=False).splitlines():
        found = _TIME_LINE.match(line)
        shown = escape(line)
        if found and (found.group(2) in TIME_KEYS or found.group(2).endswith("_at")):
            shown += format_html(
                ' <span class="json-time">{}</span>', readable_time(int(found.group(3)))
            )
        lines.append(shown)
    return format_html('<pre class="json-payload">{}</pre>', mark_safe("\n".join(lines)))


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin[StripeEvent]):
    list_display = ("stripe_id", "type", "status", "attempts", "sent_at", "received_at")
    list_filter = ("status", "type")
    search_fields = ("stripe_id", "type", "error")
    fields = (
        "stripe_id",
        "type",
        "status",
        "attempts",
        "sent_at",
        "received_at",
        "claimed_at",
        "processed_at",
        "error",
        "payload_shown",
    )
    readonly_fields = fields
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StripeEvent | None = None) -> bool:
        return False  # a record of what Stripe sent: read, replayed, never edited

    def has_delete_permission(self, request: HttpRequest, obj: StripeEvent | None = None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_stripeevent")

    @admin.display(description="Sent by Stripe", ordering="stripe_created")
    def sent_at(self, event: StripeEvent) -> str:
        return readable_time(event.stripe_created) if event.stripe_created else "-"

    @admin.display(description="Payload")
    def payload_shown(self, event: StripeEvent) -> SafeString:
        return json_shown(event.payload)

    @admin.action(description="Process the selected events again", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        results = [webhooks.stripe_event_process(record=event) for event in queryset]
        failed = sum(1 for r in results if r.status == StripeEvent.Status.FAILED)
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Replayed {len(results)} events, {failed} failed.", level)


class AttentionFilter(admin.SimpleListFilter):
    """The staff home's "refunds pending or failed": the same query."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [("yes", "Pending, or failed and not tried again")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Refund]) -> QuerySet[Refund]:
        if self.value() == "yes":
            return queryset.filter(pk__in=refunds_to_check().values("pk"))
        return queryset


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin[Refund]):
    """Every refund, as Stripe answered it; refunds are made from an order's page."""

    list_display = (
        "__str__",
        "order_link",
        "amount_shown",
        "status",
        "source",
        "created_at",
        "error",
    )
    list_filter = (AttentionFilter, "status", "source", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("order",)
    search_fields = ("stripe_refund_id", "order__email", "reason")
    fields = (
        "order_link",
        "amount_shown",
        "status",
        "source",
        "stripe_refund_id",
        "failure_reason",
        "reason",
        "restock",
        "restocked",
        "created_by",
        "created_at",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Refund | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Refund | None = None) -> bool:
        return False

    @admin.display(description="Amount", ordering="amount")
    def amount_shown(self, refund: Refund) -> str:
        return format_money(refund.amount, refund.currency)

    @admin.display(description="Order", ordering="order")
    def order_link(self, refund: Refund) -> SafeString:
        url = reverse("admin:payments_order_change", args=[refund.order_id])
        return format_html('<a href="{}">Order #{}</a>', url, refund.order_id)
