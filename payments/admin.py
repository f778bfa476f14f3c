from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from payments import refunds, shipping, webhooks
from payments.admin_forms import RefundForm, ShipForm
from payments.admin_money import DisputeInline, NeedsAttentionFilter, OrderMoneyAdmin
from payments.models import Order, OrderEvent, OrderLine, Refund, StripeEvent
from store.money import format_money

_Record = TypeVar("_Record", bound=models.Model)


def money(amount: int | None, currency: str | None) -> str:
    """Money as staff read it ("$245.00"), never minor units ("24500")."""
    return format_money(amount, currency)


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin[StripeEvent]):
    list_display = ("stripe_id", "type", "status", "attempts", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("stripe_id", "type", "error")
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StripeEvent | None = None) -> bool:
        return obj is None or request.method == "GET"

    @admin.action(description="Process the selected events again")
    def replay(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        results = [webhooks.stripe_event_process(record=event) for event in queryset]
        failed = sum(1 for r in results if r.status == StripeEvent.Status.FAILED)
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Replayed {len(results)} events, {failed} failed.", level)


class RecordInline(admin.TabularInline[_Record, Order]):
    """What happened to an order: shown, never added, changed or deleted here."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


class OrderLineInline(RecordInline[OrderLine]):
    model = OrderLine
    fields = ("product", "stripe_price_id", "quantity", "unit_price", "line_price")
    readonly_fields = fields

    @admin.display(description="Unit price")
    def unit_price(self, line: OrderLine) -> str:
        return money(line.unit_amount, line.currency)

    @admin.display(description="Line total")
    def line_price(self, line: OrderLine) -> str:
        return money(line.line_total, line.currency)


class RefundInline(RecordInline[Refund]):
    model = Refund
    verbose_name_plural = "Refunds"
    fields = (
        "created_at",
        "refunded",
        "status",
        "source",
        "stripe_refund_id",
        "lines_shown",
        "restocked",
        "reason",
        "created_by",
        "failure_reason",
        "error",
    )
    readonly_fields = fields

    @admin.display(description="Amount")
    def refunded(self, refund: Refund) -> str:
        return money(refund.amount, refund.currency)

    @admin.display(description="Lines")
    def lines_shown(self, refund: Refund) -> str:
        names = {str(line.pk): str(line.product) for line in refund.order.lines.all()}
        return ", ".join(f"{q} x {names.get(k, k)}" for k, q in refund.lines.items()) or "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return (
            super()
            .get_queryset(request)
            .select_related("order", "created_by")
            .prefetch_related("order__lines__product")
        )


class OrderEventInline(RecordInline[OrderEvent]):
    model = OrderEvent
    verbose_name_plural = "History"
    fields = ("created_at", "kind", "what", "message", "actor")
    readonly_fields = fields

    @admin.display(description="Amount")
    def what(self, event: OrderEvent) -> str:
        return money(event.amount, event.order.currency) if event.amount is not None else ""

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderEvent]:
        return super().get_queryset(request).select_related("order", "actor")


class ShippedFilter(admin.SimpleListFilter):
    title = "shipping"
    parameter_name = "shipped"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [("no", "To ship (paid, not shipped)"), ("yes", "Shipped")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "yes":
            return queryset.filter(shipped_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(
                kind=Order.Kind.GOODS,
                shipped_at__isnull=True,
                status__in=[Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED],
            )
        return queryset


@admin.register(Order)
class OrderAdmin(OrderMoneyAdmin):
    """Orders are written by checkout and fulfilment; staff ship and refund them here."""

    list_display = ("__str__", "status", "kind", "email", "total", "shipped", "created_at")
    list_filter = (
        "status",
        "kind",
        ShippedFilter,
        NeedsAttentionFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    date_hierarchy = "created_at"
    search_fields = ("email", "stripe_session_id", "stripe_payment_intent_id")
    search_help_text = "Email, order number (12 or #12), Stripe session or payment id."
    list_select_related = ("user",)
    inlines = [OrderLineInline, RefundInline, DisputeInline, OrderEventInline]
    change_form_template = "admin/payments/order/change_form.html"
    fieldsets = [
        (None, {"fields": ("status", "kind", "user", "email", "created_at", "paid_at")}),
        (
            "Money (as Stripe reports it)",
            {
                "fields": (
                    "subtotal_shown",
                    "discount_shown",
                    "shipping_shown",
                    "tax_shown",
                    "total",
                    "refunded_shown",
                    *OrderMoneyAdmin.money_fields,
                )
            },
        ),
        ("Shipping", {"fields": ("address", "shipped_at", "carrier", "tracking_number")}),
        (
            "Stripe",
            {
                "classes": ("collapse",),
                "fields": (
                    "stripe_session_id",
                    "stripe_payment_intent_id",
                    "stripe_refund_id",
                    "cart",
                    "reserved_until",
                    "problem",
                ),
            },
        ),
    ]
    readonly_fields = (
        "user",
        "cart",
        "kind",
        "status",
        "email",
        "subtotal_shown",
        "discount_shown",
        "shipping_shown",
        "tax_shown",
        "total",
        "refunded_shown",
        *OrderMoneyAdmin.money_fields,
        "address",
        "shipped_at",
        "carrier",
        "tracking_number",
        "stripe_session_id",
        "stripe_payment_intent_id",
        "stripe_refund_id",
        "reserved_until",
        "created_at",
        "paid_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # -- money and shipping, formatted -------------------------------------------------

    @admin.display(description="Total", ordering="amount_total")
    def total(self, order: Order) -> str:
        return money(order.amount_total, order.currency)

    @admin.display(description="Subtotal")
    def subtotal_shown(self, order: Order) -> str:
        return money(order.amount_subtotal, order.currency)

    @admin.display(description="Discount")
    def discount_shown(self, order: Order) -> str:
        shown = money(order.amount_discount, order.currency)
        return f"{shown} ({order.promotion_code})" if order.promotion_code else shown

    @admin.display(description="Shipping")
    def shipping_shown(self, order: Order) -> str:
        shown = money(order.amount_shipping, order.currency)
        return f"{shown} ({order.shipping_rate_name})" if order.shipping_rate_name else shown

    @admin.display(description="Tax")
    def tax_shown(self, order: Order) -> str:
        return money(order.amount_tax, order.currency)

    @admin.display(description="Refunded")
    def refunded_shown(self, order: Order) -> str:
        return money(order.amount_refunded, order.currency)

    @admin.display(description="Address")
    def address(self, order: Order) -> str:
        lines = order.shipping_address_lines
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines)) or "-"

    @admin.display(description="Shipped", boolean=True, ordering="shipped_at")
    def shipped(self, order: Order) -> bool | None:
        return None if order.kind != Order.Kind.GOODS else order.shipped_at is not None

    # -- search by order number ---------------------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        results, duplicates = super().get_search_results(request, queryset, search_term)
        number = search_term.strip().lstrip("#")
        if number.isdigit():
            results |= queryset.filter(pk=int(number))
        return results, duplicates

    # -- staff actions --------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/ship/", view(self.ship_view), name="payments_order_ship"),
            path("<int:pk>/refund/", view(self.refund_view), name="payments_order_refund"),
            *self.money_urls(),
            *super().get_urls(),
        ]

    def _change_url(self, order: Order) -> str:
        return reverse("admin:payments_order_change", args=[order.pk])

    def _page(
        self, request: HttpRequest, order: Order, template: str, **context: Any
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            f"admin/payments/order/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "order": order,
                "title": f"{context.pop('title')} {order}",
                "change_url": self._change_url(order),
                **context,
            },
        )

    def ship_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = get_object_or_404(Order, pk=pk)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        form = ShipForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                shipping.order_mark_shipped(
                    order_id=order.pk,
                    carrier=form.cleaned_data["carrier"],
                    tracking_number=form.cleaned_data["tracking_number"],
                    actor=request.user,
                )
            except shipping.ShippingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{order} marked shipped; the shopper was emailed.")
            return HttpResponseRedirect(self._change_url(order))
        return self._page(request, order, "ship.html", form=form, title="Mark shipped:")

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = get_object_or_404(Order, pk=pk)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        form = RefundForm(request.POST or None, order=order)
        if request.method == "POST" and form.is_valid():
            # What is left to refund is worked out by the service, under the order's lock and
            # after the form's token is looked up: a form submitted again after its refund was
            # made gets that refund back, never "nothing left".
            try:
                refund = refunds.order_refund(
                    order_id=order.pk,
                    request_token=form.cleaned_data["request_token"],
                    amount=form.cleaned_data["amount"],
                    lines=form.lines(),
                    restock=form.cleaned_data["restock"],
                    everything=form.cleaned_data["everything"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
            except refunds.RefundError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:payments_order_refund", args=[pk]))
            level, text = refund_outcome(refund, str(order))
            self.message_user(request, text, level)
            if refund.status == Refund.Status.FAILED:  # the form again, with what is left now
                return HttpResponseRedirect(reverse("admin:payments_order_refund", args=[pk]))
            return HttpResponseRedirect(self._change_url(order))
        return self._page(
            request,
            order,
            "refund.html",
            form=form,
            refundable=money(order.refundable, order.currency),
            refunding=money(order.amount_refunding, order.currency),
            title="Refund",
        )


def refund_outcome(refund: Refund, order: str) -> tuple[int, str]:
    """What staff are told about a refund they asked for: Stripe's word, never more."""
    amount = money(refund.amount, refund.currency)
    if refund.status == Refund.Status.SUCCEEDED:
        if not refund.amount:
            return messages.SUCCESS, f"Given back on {order}: nothing to refund (100 % off)."
        return messages.SUCCESS, f"Refunded {amount} of {order} (succeeded)."
    if refund.status in (Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION):
        return messages.WARNING, (
            f"Refund of {amount} of {order} is {refund.get_status_display().lower()}: the "
            "money is not back with the shopper yet; the order shows when it is."
        )
    if refund.status == Refund.Status.REQUESTED:
        return messages.WARNING, (
            f"Refund of {amount} of {order} requested; no answer from Stripe yet. It is counted "
            "against what is left, and the shop asks Stripe again (it is never made twice)."
        )
    return messages.ERROR, f"Stripe refused the refund of {amount}: {refund.error}"
