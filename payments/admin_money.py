"""The admin's view of an order's money beyond its lines: disputes, what needs staff, the
"Look again at Stripe" button and action, and the books' differences with Stripe's."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from payments import money_look, stripe_api
from payments.models import BooksDifference, Dispute, Order
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
    """OrderAdmin's money: refunds on their way, disputes lost, what needs staff, and a
    look again at Stripe for the selected orders (or one, from its page)."""

    money_fields = ("refunding_shown", "disputed_shown", "attention_shown", "at_stripe")
    actions = ["look_again", "attention_dealt_with"]

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

    @admin.action(description="Look again at Stripe (refunds, disputes, payment)")
    def look_again(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        failed = []
        for order in queryset:
            try:
                money_look.order_look_again(order_id=order.pk)
            except stripe_api.StripeError as exc:
                failed.append(f"{order}: {exc}")
        if failed:
            self.message_user(request, "Stripe could not be asked: " + "; ".join(failed), "error")
        else:
            self.message_user(request, f"Looked again at Stripe for {queryset.count()} order(s).")

    @admin.action(description="Mark what needs staff as dealt with")
    def attention_dealt_with(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done = queryset.exclude(attention="").update(attention="")
        self.message_user(request, f"{done} order(s) no longer need staff.")

    def money_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(require_POST(self.look_view))
        return [path("<int:pk>/look/", view, name="payments_order_look")]

    def look_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = get_object_or_404(Order, pk=pk)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        try:
            order = money_look.order_look_again(order_id=order.pk)
        except stripe_api.StripeError as exc:
            self.message_user(request, f"Stripe could not be asked: {exc}", messages.ERROR)
        else:
            self.message_user(
                request, f"Looked again at Stripe: {order} is {order.get_status_display()}."
            )
        return HttpResponseRedirect(reverse("admin:payments_order_change", args=[order.pk]))


@admin.register(BooksDifference)
class BooksDifferenceAdmin(admin.ModelAdmin[BooksDifference]):
    """What `check_books` found different between the shop's books and Stripe's."""

    list_display = ("kind", "stripe_id", "order_link", "message", "first_seen", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "kind")
    search_fields = ("stripe_id", "shop_ref", "message")
    readonly_fields = [
        *(f.name for f in BooksDifference._meta.fields if f.name != "order"),
        "order_link",
        "at_stripe",
    ]
    exclude = ("order",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: BooksDifference | None = None
    ) -> bool:
        return obj is None or request.method == "GET"

    @admin.display(description="In the shop")
    def order_link(self, difference: BooksDifference) -> str:
        if difference.order_id is None:
            return difference.shop_ref or "-"
        url = reverse("admin:payments_order_change", args=[difference.order_id])
        return format_html('<a href="{}">{}</a>', url, difference.shop_ref)

    @admin.display(description="In Stripe's dashboard")
    def at_stripe(self, difference: BooksDifference) -> str:
        return _stripe_link(difference.dashboard_url, difference.stripe_id)
