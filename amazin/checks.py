"""System checks that stop a production deployment from starting with development values.

With `DEBUG` off they are errors, and Django runs them before `check` (`--deploy` too),
`runserver` and `migrate`, so `make serve` (which migrates first) refuses to start too. A
webhook secret that is in this repository would let anyone forge Stripe events; a localhost
`SITE_URL` sends paying shoppers back to a page that does not exist. A deployment that knows
better (a benchmark on a laptop) names the check in `SILENCED_SYSTEM_CHECKS`.

`check --deploy` (DEBUG off) also warns about values that work but are unsafe or lose mail in
production (`deployment_settings_check`), and every run refuses settings Stripe would refuse
at the first checkout (`checkout_settings_check`: Checkout's limits).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from payments.shipping import rate_specs

# The values `make run` and the emulator use; public, since they are in this repository.
DEVELOPMENT_STRIPE_SECRET_KEYS = {"sk_test_emulator"}
DEVELOPMENT_WEBHOOK_SECRETS = {"whsec_amazin_emulator_secret"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"}
# Stripe's webhook secrets are `whsec_` and 32 characters or more (64 from the Stripe CLI):
# anything shorter is a placeholder, and guessable.
WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_SECRET_MIN_LENGTH = len(WEBHOOK_SECRET_PREFIX) + 32
# Mail backends that deliver nothing: what shoppers are told would be lost.
UNDELIVERED_MAIL = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
}
# Checkout Sessions take at most 5 shipping options (SessionCreateParams.shipping_options) ...
MAX_SHIPPING_OPTIONS = 5
# ... and refuse these countries in shipping_address_collection.allowed_countries (the SDK's
# list of allowed values leaves them out).
REFUSED_SHIPPING_COUNTRIES = frozenset(
    {"AS", "CX", "CC", "CU", "HM", "IR", "KP", "MH", "FM", "NF", "MP", "PW", "SY", "UM", "VI"}
)


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


@checks.register(checks.Tags.security, deploy=True)
def deployment_settings_check(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """`check --deploy` with DEBUG off: values that run, but not safely, in production."""
    if settings.DEBUG:
        return []
    warnings: list[checks.CheckMessage] = []
    if urlsplit(settings.SITE_URL).scheme != "https":
        warnings.append(
            checks.Warning(
                f"SITE_URL is {settings.SITE_URL!r}, not https: shoppers come back from Stripe "
                "Checkout, and their session cookie travels, in the clear.",
                hint="Set SITE_URL to the shop's https:// address.",
                id="amazin.W001",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        warnings.append(
            checks.Warning(
                "ALLOWED_HOSTS contains '*': any Host header is accepted, so links the shop "
                "builds from it (password reset emails) can point at another site.",
                hint="List the shop's host names.",
                id="amazin.W002",
            )
        )
    if settings.EMAIL_BACKEND in UNDELIVERED_MAIL:
        warnings.append(
            checks.Warning(
                f"Mail goes to {settings.EMAIL_BACKEND.rsplit('.', 2)[-2]}, not to shoppers: "
                "order confirmations, refunds and password resets are never delivered.",
                hint="Set EMAIL_URL (smtp+tls://user:password@host:587).",
                id="amazin.W003",
            )
        )
    secret = settings.STRIPE_WEBHOOK_SECRET
    if secret and (
        not secret.startswith(WEBHOOK_SECRET_PREFIX) or len(secret) < WEBHOOK_SECRET_MIN_LENGTH
    ):
        warnings.append(
            checks.Warning(
                "STRIPE_WEBHOOK_SECRET does not look like a Stripe signing secret (whsec_ and "
                "32 characters or more): a short secret can be guessed and webhooks forged.",
                hint="Copy the endpoint's signing secret from Stripe's dashboard.",
                id="amazin.W004",
            )
        )
    if urlsplit(settings.STRIPE_API_BASE).scheme == "http":
        warnings.append(
            checks.Warning(
                f"STRIPE_API_BASE is {settings.STRIPE_API_BASE!r}: the secret key and every "
                "payment travel in the clear (and that is not Stripe).",
                hint="Unset STRIPE_API_BASE to talk to Stripe.",
                id="amazin.W005",
            )
        )
    return warnings


@checks.register()
def money_settings_check(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Settings that would cost shoppers their payments, in development too."""
    errors: list[checks.CheckMessage] = []
    if settings.DELAYED_PAYMENT_HOLD_HOURS < 1:
        errors.append(
            checks.Error(
                f"DELAYED_PAYMENT_HOLD_HOURS is {settings.DELAYED_PAYMENT_HOLD_HOURS}: a bank "
                "transfer's stock would go back on sale as its checkout completed, and most "
                "transfers would arrive to be refunded.",
                hint="Set it to the hours a transfer's stock is held (at least 1; default 24).",
                id="amazin.E004",
            )
        )
    if settings.TRUSTED_PROXY_HOPS < 0:
        errors.append(
            checks.Error(
                f"TRUSTED_PROXY_HOPS is {settings.TRUSTED_PROXY_HOPS}: it counts proxies.",
                hint="0 without a reverse proxy, else how many append to X-Forwarded-For.",
                id="amazin.E005",
            )
        )
    return errors


@checks.register()
def checkout_settings_check(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Shipping settings Stripe would refuse at every goods checkout (Checkout's limits)."""
    errors: list[checks.CheckMessage] = []
    try:
        rates = len(rate_specs())
    except ValueError as exc:
        errors.append(checks.Error(str(exc), id="amazin.E006"))
        rates = 0
    if rates > MAX_SHIPPING_OPTIONS:
        errors.append(
            checks.Error(
                f"SHIPPING_RATES has {rates} rates: Stripe Checkout takes at most "
                f"{MAX_SHIPPING_OPTIONS} shipping options, so no goods checkout could start.",
                hint=f"Keep {MAX_SHIPPING_OPTIONS} rates or fewer.",
                id="amazin.E006",
            )
        )
    countries = [c.strip().upper() for c in settings.SHIPPING_COUNTRIES if c.strip()]
    refused = sorted(REFUSED_SHIPPING_COUNTRIES.intersection(countries))
    malformed = sorted(c for c in countries if len(c) != 2 or not c.isascii() or not c.isalpha())
    if refused or malformed:
        errors.append(
            checks.Error(
                f"SHIPPING_COUNTRIES has {', '.join(refused + malformed)}: Stripe Checkout "
                "refuses "
                + ("these countries" if refused else "anything but two-letter country codes")
                + ", so no goods checkout could start.",
                hint="List ISO 3166-1 alpha-2 codes Stripe ships to.",
                id="amazin.E007",
            )
        )
    return errors
