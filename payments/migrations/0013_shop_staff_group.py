"""The "Shop staff" group: see orders and products, set stock, ship and refund, and see the
money around orders (refunds, disputes, the books' differences with Stripe's).

Staff accounts join it (README, "Staff"); superusers need no group. The permissions are
created here first: on a new database Django makes them only after every migration ran.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Shop staff"
PERMISSIONS = [
    ("payments", "order", "view_order"),
    ("payments", "order", "ship_order"),
    ("payments", "order", "refund_order"),
    ("payments", "orderline", "view_orderline"),
    ("payments", "refund", "view_refund"),
    ("payments", "dispute", "view_dispute"),
    ("payments", "booksdifference", "view_booksdifference"),
    ("payments", "orderevent", "view_orderevent"),
    ("store", "product", "view_product"),
    ("store", "product", "change_product"),  # the stock: every other field is Stripe's
    ("store", "price", "view_price"),
    ("store", "reservation", "view_reservation"),
]


def group_create(apps, schema_editor):
    for label in ("payments", "store"):
        config = apps.get_app_config(label)
        if getattr(config, "models_module", None) is None:
            config.models_module = True  # a historical app has none: make its permissions
        create_permissions(config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, model, codename in PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(
                content_type__app_label=app_label, content_type__model=model, codename=codename
            )
        )


def group_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("payments", "0012_order_staff_indexes_and_permissions"),
        ("store", "0004_product_active_stock"),
    ]

    operations = [migrations.RunPython(group_create, group_delete)]
