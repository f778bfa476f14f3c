from django.apps import AppConfig


class AmazinConfig(AppConfig):
    """The project package as an app only so that its system checks are registered."""

    name = "amazin"

    def ready(self) -> None:
        from amazin import checks  # noqa: F401  (registers the checks)
