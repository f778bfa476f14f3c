from django.apps import AppConfig


class StoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "store"

    def ready(self) -> None:
        from store import live

        live.register()  # how a product card renders on /live/
