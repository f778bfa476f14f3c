from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from accounts import services
        from payments import signals

        # Payments announces; accounts listens (payments never imports accounts).
        signals.order_paid.connect(services.on_order_paid, dispatch_uid="accounts_order_paid")
        signals.order_refunded.connect(
            services.on_order_refunded, dispatch_uid="accounts_order_refunded"
        )
