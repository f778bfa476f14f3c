"""Pending orders used to hold stock through their lines; now a store.Reservation per line,
held by "order:<pk>", does. Carry over the holds that are still running."""

from django.db import migrations
from django.utils import timezone


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    Order = apps.get_model("payments", "Order")
    OrderLine = apps.get_model("payments", "OrderLine")
    Reservation = apps.get_model("store", "Reservation")
    holding = Order.objects.filter(
        status="pending", kind="goods", reserved_until__gt=timezone.now()
    )
    Reservation.objects.bulk_create(
        Reservation(
            product_id=line.product_id,
            quantity=line.quantity,
            holder=f"order:{line.order_id}",
            expires_at=line.order.reserved_until,
        )
        for line in OrderLine.objects.filter(order__in=holding).select_related("order")
    )


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    # The old scheme reads holds from the order lines themselves: nothing to undo.
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("store", "0002_reservation"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
