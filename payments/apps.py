from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from cart.signals import cart_merging
        from payments import settle

        # Cart announces a log-in's merge; payments settles the cart's open checkout first.
        cart_merging.connect(settle.on_cart_merging, dispatch_uid="payments_cart_merging")
