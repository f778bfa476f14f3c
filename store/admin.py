from django.contrib import admin

from store import live
from store.models import Price, Product, Reservation


class PriceInline(admin.TabularInline):
    model = Price
    extra = 0
    can_delete = False
    fields = readonly_fields = ("stripe_id", "unit_amount", "currency", "type", "active")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # prices are created in Stripe


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "stripe_id", "price", "stock", "active", "updated_at")
    list_editable = ("stock",)
    list_filter = ("active", "deleted")
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

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # products are created in Stripe

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # Also called for each row edited in the changelist (`list_editable` stock).
        super().save_model(request, obj, form, change)
        live.publish_on_commit([obj.pk])


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("stripe_id", "product", "unit_amount", "currency", "type", "active")
    list_filter = ("active", "currency", "type")
    search_fields = ("stripe_id", "product__name", "lookup_key")
    list_select_related = ("product",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    """Holds are written by checkout and released by payment, expiry or cancel: look only."""

    list_display = ("product", "quantity", "holder", "expires_at", "created_at")
    search_fields = ("holder", "product__name", "product__stripe_id")
    list_select_related = ("product",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
