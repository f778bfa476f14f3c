"""System checks that stop a production deployment from starting with development values.

With `DEBUG` off they are errors, and Django runs them before `check` (`--deploy` too),
`runserver` and `migrate`, so `make serve` (which migrates first) refuses to start too. A
webhook secret that is in this repository would let anyone forge Stripe events; a localhost
`SITE_URL` sends paying shoppers back to a page that does not exist. A deployment that knows
better (a benchmark on a laptop) names the check in `SILENCED_SYSTEM_CHECKS`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

# The values `make run` and the emulator use; public, since they are in this repository.
DEVELOPMENT_STRIPE_SECRET_KEYS = {"sk_test_emulator"}
DEVELOPMENT_WEBHOOK_SECRETS = {"whsec_amazin_emulator_secret"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"}


@checks.register(checks.Tags.security)
def production_settings_check(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    errors: list[checks.CheckMessage] = []
    secret_key = settings.STRIPE_SECRET_KEY
    if not secret_key or secret_key in DEVELOPMENT_STRIPE_SECRET_KEYS:
        errors.append(
            checks.Error(
                "STRIPE_SECRET_KEY is missing or the emulator's development key.",
                hint="Set STRIPE_SECRET_KEY to your sk_live_... (or sk_test_...) key.",
                id="amazin.E001",
            )
        )
    webhook_secret = settings.STRIPE_WEBHOOK_SECRET
    if not webhook_secret or webhook_secret in DEVELOPMENT_WEBHOOK_SECRETS:
        errors.append(
            checks.Error(
                "STRIPE_WEBHOOK_SECRET is missing or the development secret from this "
                "repository: anyone could sign webhooks.",
                hint="Set STRIPE_WEBHOOK_SECRET to the whsec_... of your webhook endpoint.",
                id="amazin.E002",
            )
        )
    host = (urlsplit(settings.SITE_URL).hostname or "").lower()
    if not host or host in LOCAL_HOSTS or host.endswith(".localhost"):
        errors.append(
            checks.Error(
                f"SITE_URL is {settings.SITE_URL!r}: shoppers returning from Stripe Checkout "
                "would be sent to their own machine.",
                hint="Set SITE_URL to the shop's public https:// address.",
                id="amazin.E003",
            )
        )
    return errors


@checks.register()
def money_settings_check(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Settings that would cost shoppers their payments, in development too."""
    if settings.DELAYED_PAYMENT_HOLD_HOURS < 1:
        return [
            checks.Error(
                f"DELAYED_PAYMENT_HOLD_HOURS is {settings.DELAYED_PAYMENT_HOLD_HOURS}: a bank "
                "transfer's stock would go back on sale as its checkout completed, and most "
                "transfers would arrive to be refunded.",
                hint="Set it to the hours a transfer's stock is held (at least 1; default 24).",
                id="amazin.E004",
            )
        ]
    return []
