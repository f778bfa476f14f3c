"""The admin's view of an order's money beyond its lines: disputes, and what needs staff."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from payments.models import Dispute, Order
from payments.money_records import dashboard_url
from store.money import format_money


def _stripe_link(url: str, text: str) -> str:
    return (
        format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, text) if url else "-"
    )


class DisputeInline(admin.TabularInline[Dispute, Order]):
    model = Dispute
    verbose_name_plural = "Disputes"
    extra = 0
    can_delete = False
    fields = ("opened_at", "disputed", "status", "reason", "evidence_due_by", "at_stripe")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    @admin.display(description="Amount")
    def disputed(self, dispute: Dispute) -> str:
        return format_money(dispute.amount, dispute.currency)

    @admin.display(description="In Stripe's dashboard")
    def at_stripe(self, dispute: Dispute) -> str:
        return _stripe_link(dispute.dashboard_url, dispute.stripe_dispute_id)


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "money"
    parameter_name = "money"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [
            ("attention", "Needs staff (a refund failed, a dispute)"),
            ("unsettled", "Not settled with Stripe yet"),
            ("disputed", "Disputed"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "attention":
            return queryset.exclude(attention="")
        if self.value() == "unsettled":
            return queryset.filter(status=Order.Status.REFUND_PENDING) | queryset.filter(
                amount_refunding__gt=0
            )
        if self.value() == "disputed":
            return queryset.filter(disputes__isnull=False).distinct()
        return queryset


class OrderMoneyAdmin(admin.ModelAdmin[Order]):
    """OrderAdmin's money: refunds on their way, disputes lost, what needs staff."""

    money_fields = ("refunding_shown", "disputed_shown", "attention_shown", "at_stripe")
    actions = ["attention_dealt_with"]

    @admin.display(description="On its way back (refunds Stripe has not completed)")
    def refunding_shown(self, order: Order) -> str:
        return format_money(order.amount_refunding, order.currency)

    @admin.display(description="Lost in disputes")
    def disputed_shown(self, order: Order) -> str:
        return format_money(order.amount_disputed, order.currency)

    @admin.display(description="Needs staff")
    def attention_shown(self, order: Order) -> str:
        return order.attention or "-"

    @admin.display(description="In Stripe's dashboard")
    def at_stripe(self, order: Order) -> str:
        intent = order.stripe_payment_intent_id
        return _stripe_link(dashboard_url(intent), intent)

    @admin.action(description="Mark what needs staff as dealt with")
    def attention_dealt_with(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done = queryset.exclude(attention="").update(attention="")
        self.message_user(request, f"{done} order(s) no longer need staff.")
