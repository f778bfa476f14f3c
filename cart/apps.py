from django.apps import AppConfig


class CartConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cart"

    def ready(self) -> None:
        from cart import services  # noqa: F401  (connects the merge-on-login receiver)
