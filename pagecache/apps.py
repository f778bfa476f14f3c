from django.apps import AppConfig


class PagecacheConfig(AppConfig):
    name = "pagecache"
    verbose_name = "Page caches"

    def ready(self) -> None:
        from live import registry
        from pagecache.changes import changes

        registry.listen(changes.note)  # every change live hears of, before it renders it
