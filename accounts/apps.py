from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from accounts import services
        from accounts.models import Entitlement
        from payments import signals

        # Every process's memo of what a user's page shows (store.visitors) hears of it.
        post_save.connect(
            services.on_entitlement_saved, sender=Entitlement, dispatch_uid="accounts_pass_saved"
        )

        # Payments announces; accounts listens (payments never imports accounts).
        signals.order_paid.connect(services.on_order_paid, dispatch_uid="accounts_order_paid")
        signals.order_refunded.connect(
            services.on_order_refunded, dispatch_uid="accounts_order_refunded"
        )
        signals.order_dispute_lost.connect(
            services.on_order_refunded, dispatch_uid="accounts_order_dispute_lost"
        )
        signals.order_unrefunded.connect(
            services.on_order_unrefunded, dispatch_uid="accounts_order_unrefunded"
        )
