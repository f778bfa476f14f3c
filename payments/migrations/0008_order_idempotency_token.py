"""Every order gets a random `idempotency_token`, its Stripe idempotency keys' own part.

Orders that may have a Stripe request in flight under the key their id gave them (a pending
order whose session create went unanswered, an unfillable one whose refund is queued) keep
that key: the token is their id, so a retry after the upgrade sends the same key and gets
the same session or refund, not a second one. Every other order gets a random token.
"""

import secrets

from django.db import migrations, models

import payments.models

# Before this migration the keys were f"amazin-{purpose}-order-{order.pk}".
IN_FLIGHT = ("pending", "refund_pending")


def fill(apps, schema_editor):
    Order = apps.get_model("payments", "Order")
    for order in Order.objects.only("pk", "status").iterator():
        token = str(order.pk) if order.status in IN_FLIGHT else secrets.token_hex(16)
        Order.objects.filter(pk=order.pk).update(idempotency_token=token)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0007_order_status_refund_pending_and_partial"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="idempotency_token",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="order",
            name="idempotency_token",
            field=models.CharField(
                default=payments.models.idempotency_token,
                editable=False,
                max_length=32,
                unique=True,
            ),
        ),
    ]
