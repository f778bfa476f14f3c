from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ShopAdminConfig(AdminConfig):
    """Django's admin with the shop's site (`amazin.admin_site`): the staff home as index."""

    default_site = "amazin.admin_site.ShopAdminSite"


class AmazinConfig(AppConfig):
    """The project package as an app only so that its system checks are registered."""

    name = "amazin"

    def ready(self) -> None:
        from amazin import checks  # noqa: F401  (registers the checks)
