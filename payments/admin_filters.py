"""The order list's filters: which orders it shows, and which are still to ship."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from payments.models import Order
from payments.staff_home import orders_to_ship

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices
    from django.contrib.admin.views.main import ChangeList

# Orders staff work on: money was taken (or a transfer is on its way). The rest are
# checkouts nobody paid for: open, expired or failed.
REAL_ORDERS = (
    Order.Status.PAID,
    Order.Status.PROCESSING,
    Order.Status.PARTIALLY_REFUNDED,
    Order.Status.REFUNDED,
    Order.Status.REFUND_PENDING,
)
ABANDONED = (Order.Status.PENDING, Order.Status.EXPIRED, Order.Status.FAILED)
# Filters that pick orders themselves: what they pick is shown, whatever its status.
SEE_ALL = {"status__exact", "money"}


class ShownFilter(admin.SimpleListFilter):
    """Real orders unless asked otherwise; a search, a status filter or the money filter
    (admin_money.NeedsAttentionFilter: the staff home links to it) sees every order."""

    title = "orders"
    parameter_name = "shown"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [("abandoned", "Checkouts not paid"), ("all", "All")]

    def choices(self, changelist: ChangeList) -> Iterator[_ListFilterChoices]:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Real orders (paid, on their way or refunded)",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "abandoned":
            return queryset.filter(status__in=ABANDONED)
        if self.value() == "all" or request.GET.get("q") or request.GET.keys() & SEE_ALL:
            return queryset
        return queryset.filter(status__in=REAL_ORDERS)


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
            return queryset.filter(pk__in=orders_to_ship().values("pk"))
        return queryset
