from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0008_order_idempotency_token"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="stripe_check_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="order",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Awaiting payment"),
                    ("processing", "Awaiting your bank transfer"),
                    ("paid", "Paid"),
                    ("expired", "Expired"),
                    ("failed", "Checkout failed"),
                    ("refund_pending", "Paid, not filled: refund under way"),
                    ("refunded", "Refunded"),
                    ("partially_refunded", "Partly refunded"),
                ],
                db_index=True,
                default="pending",
                max_length=24,
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "stripe_check_at"], name="order_status_check_at"),
        ),
    ]
