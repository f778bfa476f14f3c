from django.contrib import admin, messages

from payments import webhooks
from payments.models import Order, OrderLine, StripeEvent


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ("stripe_id", "type", "status", "attempts", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("stripe_id", "type", "error")
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return obj is None or request.method == "GET"

    @admin.action(description="Process the selected events again")
    def replay(self, request, queryset):  # type: ignore[no-untyped-def]
        results = [webhooks.stripe_event_process(record=event) for event in queryset]
        failed = sum(1 for r in results if r.status == StripeEvent.Status.FAILED)
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Replayed {len(results)} events, {failed} failed.", level)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ("product", "stripe_price_id", "quantity", "unit_amount", "currency")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders are written by checkout and fulfilment; staff look, and may note a problem."""

    list_display = ("__str__", "status", "kind", "email", "amount_total", "currency", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("email", "stripe_session_id", "stripe_payment_intent_id")
    list_select_related = ("user",)
    inlines = [OrderLineInline]
    readonly_fields = (
        "user",
        "cart",
        "kind",
        "status",
        "email",
        "amount_total",
        "currency",
        "stripe_session_id",
        "stripe_payment_intent_id",
        "stripe_refund_id",
        "reserved_until",
        "created_at",
        "paid_at",
    )

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
