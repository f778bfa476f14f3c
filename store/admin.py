from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from store import live
from store.models import Price, Product, Reservation
from store.money import format_money


class PriceInline(admin.TabularInline[Price, Product]):
    model = Price
    extra = 0
    can_delete = False
    fields = readonly_fields = ("stripe_id", "amount", "type", "active")

    @admin.display(description="Unit amount")
    def amount(self, price: Price) -> str:
        return format_money(price.unit_amount, price.currency)

    def has_add_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        return False  # prices are created in Stripe


class LowStockFilter(admin.SimpleListFilter):
    """Products to restock: at most settings.LOW_STOCK_THRESHOLD left."""

    title = "stock"
    parameter_name = "low_stock"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [
            ("low", f"Low (at most {settings.LOW_STOCK_THRESHOLD})"),
            ("out", "Out of stock"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> QuerySet[Product]:
        if self.value() == "low":
            return queryset.filter(stock__lte=settings.LOW_STOCK_THRESHOLD)
        if self.value() == "out":
            return queryset.filter(stock=0)
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    # Stock first: the one column staff edit stays on screen on a laptop (1280 px) and a phone.
    list_display = ("name", "stock", "price_shown", "active", "stripe_id", "updated_at")
    list_editable = ("stock",)
    list_filter = (LowStockFilter, "active", "deleted")
    list_select_related = ("price",)
    search_fields = ("name", "stripe_id", "description")
    # Stripe owns everything but the stock: edit those in Stripe, they sync back here.
    readonly_fields = (
        "stripe_id",
        "name",
        "description",
        "images",
        "active",
        "deleted",
        "metadata",
        "default_price_stripe_id",
        "price",
        "stripe_event_created",
        "created_at",
        "updated_at",
    )
    fields = ("stock", *readonly_fields)
    inlines = [PriceInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # products are created in Stripe

    def has_delete_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        # Archived in Stripe, never deleted here: orders keep their lines, and the shop's
        # caches and live pages hear of an archive (a webhook), not of a deleted row.
        return False

    @admin.display(description="Price", ordering="price__unit_amount")
    def price_shown(self, product: Product) -> str:
        price = product.price
        return format_money(price.unit_amount, price.currency) if price else "-"

    def save_model(
        self, request: HttpRequest, obj: Product, form: ModelForm[Product], change: bool
    ) -> None:
        # Also called for each row edited in the changelist (`list_editable` stock).
        super().save_model(request, obj, form, change)
        live.publish_on_commit([obj.pk])


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin[Price]):
    list_display = ("stripe_id", "product", "amount", "type", "active")
    list_filter = ("active", "currency", "type")
    search_fields = ("stripe_id", "product__name", "lookup_key")
    list_select_related = ("product",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        return False

    @admin.display(description="Unit amount", ordering="unit_amount")
    def amount(self, price: Price) -> str:
        return format_money(price.unit_amount, price.currency)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin[Reservation]):
    """Holds are written by checkout and released by payment, expiry or cancel: look only."""

    list_display = ("product", "quantity", "holder", "expires_at", "created_at")
    search_fields = ("holder", "product__name", "product__stripe_id")
    list_select_related = ("product",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Reservation | None = None) -> bool:
        return False
