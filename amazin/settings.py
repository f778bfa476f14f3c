"""Amazin settings: everything that differs between machines comes from the environment.

Every variable is documented in `.env.example`. A `.env` file next to `manage.py` is read
when present (never committed).
"""

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ

# Lets the admin classes be written ModelAdmin[Order] (a no-op for Django itself).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


class SetVariables(Mapping[str, str]):
    """The environment without its empty variables: `KEY=` (as `.env.example` has them)
    means "the default", not "the empty string" (an empty SECRET_KEY made every page a 500)."""

    def __getitem__(self, key: str) -> str:
        value = os.environ[key]
        if value == "":
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (key for key, value in os.environ.items() if value != "")

    def __len__(self) -> int:
        return sum(1 for _ in self)


env = environ.Env()
env.ENVIRON = SetVariables()
# ENV_FILE points elsewhere (or at /dev/null, as the tests do) to ignore a local .env.
environ.Env.read_env(os.environ.get("ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="django-insecure-amazin-development-only-key")
else:
    SECRET_KEY = env("SECRET_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
SITE_URL = env("SITE_URL", default="http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "amazin.apps.ShopAdminConfig",  # django.contrib.admin, with the staff home
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "amazin.apps.AmazinConfig",
    "live",
    "pagecache",
    "store",
    "cart",
    "payments",
    "accounts",
]

MIDDLEWARE = [
    # First: a body too large is refused before anything reads it.
    "amazin.middleware.request_body_limit",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

# Database sessions that announce their changes to every process's header memo.
SESSION_ENGINE = "amazin.sessions"

ROOT_URLCONF = "amazin.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cart.context_processors.cart_summary",
                "accounts.context_processors.access",
                "store.context_processors.page_meta",
            ],
        },
    },
]

WSGI_APPLICATION = "amazin.wsgi.application"
ASGI_APPLICATION = "amazin.asgi.application"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so two writers queue instead of
    # failing with "database is locked" half-way through a checkout.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
# Persistent connections: a new PostgreSQL backend per request costs ~3x on the grid, and
# a new SQLite connection (open, PRAGMAs) costs more than the whole cached page.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
# A health check is a `SELECT 1` round trip before each request's first query: as much as
# a returning shopper's whole page costs on PostgreSQL. Without it, a connection that died
# (a database restart) fails one request, and Django then closes and replaces it.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "store:grid"
LOGOUT_REDIRECT_URL = "store:grid"

# django-axes: five failures for one username from one address lock that pair for 15
# minutes. Never the username alone: then anyone, from anywhere, could lock a staff account
# (and with it refunds and shipping) by typing its email with wrong passwords.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The address as the checkout limits see it (TRUSTED_PROXY_HOPS, below).
AXES_CLIENT_IP_CALLABLE = "amazin.http.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT: Path | None = BASE_DIR / "staticfiles"  # None in the tests (served from apps)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_MAX_AGE = 31536000 if not DEBUG else 0

# Request bodies larger than this are answered 413 before they are read: by
# amazin.middleware (Django, on Content-Length) and by the production ASGI entry (live.guard,
# also for chunked bodies). Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB of form data)
# still applies below it.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=4 * 1024 * 1024)

# Keep rendered pages until what they show changes (pagecache): safe only where every change is
# published, as in `make serve`; off by default so that tests and scripts writing rows
# directly never see a stale grid.
LIVE_GRID_CACHE = env.bool("LIVE_GRID_CACHE", default=False)

# HTTPS: on by default in production. `make serve` on a laptop turns it off (plain http).
HTTPS = env.bool("HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Amazin <shop@amazin.localhost>")
# Who on the staff is emailed about money that needs them: a refund that failed, a dispute
# opened or closed, new differences between the shop's books and Stripe's.
STAFF_EMAILS = env.list("STAFF_EMAILS", default=[])

# Stripe. STRIPE_API_BASE unset means real Stripe; the emulator sets it to its own URL.
# The emulator's keys are defaults only in development: with DEBUG off a missing key is a
# system-check error (amazin/checks.py), never a silent fallback to a public secret.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="sk_test_emulator" if DEBUG else "")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="pk_test_emulator" if DEBUG else "")
STRIPE_WEBHOOK_SECRET = env(
    "STRIPE_WEBHOOK_SECRET", default="whsec_amazin_emulator_secret" if DEBUG else ""
)
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
# Where the admin links a payment or dispute to (a test-mode object gets `/test/`).
STRIPE_DASHBOARD_URL = env("STRIPE_DASHBOARD_URL", default="https://dashboard.stripe.com")
STRIPE_AUTOMATIC_TAX = env.bool("STRIPE_AUTOMATIC_TAX", default=False)
# Goods orders collect a shipping address in one of these countries (ISO codes) ...
SHIPPING_COUNTRIES = env.list(
    "SHIPPING_COUNTRIES", default=["US", "CA", "GB", "IE", "FR", "DE", "NL", "BE", "ES", "IT"]
)
# ... and offer these rates: `key:Display name:amount` (minor units of the order's
# currency), comma-separated; the first is preselected. Empty: no shipping options.
SHIPPING_RATES = env(
    "SHIPPING_RATES",
    default="standard:Standard shipping (5-7 days):500,express:Express shipping (1-2 days):1500",
)
# Checkout shows a "promotion code" field (codes are made in Stripe's dashboard).
STRIPE_ALLOW_PROMOTION_CODES = env.bool("STRIPE_ALLOW_PROMOTION_CODES", default=True)
# The admin's low-stock list: products with at most this many in stock.
LOW_STOCK_THRESHOLD = env.int("LOW_STOCK_THRESHOLD", default=5)
# The price that buys the members' area: a price id, or empty for the demo pass's lookup key.
ACCESS_PRICE_ID = env("ACCESS_PRICE_ID", default="")
ACCESS_PRICE_LOOKUP_KEY = "amazin_access_pass"
# How long a shopper may stay on Checkout with stock held for them (Stripe's minimum is 30).
CHECKOUT_RESERVATION_MINUTES = 30
# What one shopper (address, user, browser) may hold in open checkouts, and how many
# checkouts they may start a minute (429; payments/limits.py).
CHECKOUT_MAX_UNITS_PER_ADDRESS = env.int("CHECKOUT_MAX_UNITS_PER_ADDRESS", default=30)
CHECKOUT_STARTS_PER_MINUTE = env.int("CHECKOUT_STARTS_PER_MINUTE", default=10)
# Behind reverse proxies: how many of them append to X-Forwarded-For before the request
# reaches the shop (0: the header is ignored and the connecting address is the client's).
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
# How long a bank transfer's stock stays held after checkout, in hours: then it goes back on
# sale and the order awaits its money unheld (filled if the stock is there when it comes,
# refunded otherwise; payments/delayed.py).
DELAYED_PAYMENT_HOLD_HOURS = env.int("DELAYED_PAYMENT_HOLD_HOURS", default=24)

# Checks a deployment knowingly skips, e.g. amazin.E003 for a benchmark on localhost.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# The background queue (payments/queue.py): tasks are rows in this database, run by
# `python manage.py shop_worker`. Failed tasks retry with exponential back-off.
TASKS: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}
}
TASK_MAX_ATTEMPTS = env.int("TASK_MAX_ATTEMPTS", default=10)
# A worker whose heartbeat is older than this is dead to the others: its running tasks and
# Stripe events are taken over (payments/heartbeat.py). It beats five times per lease.
WORKER_LEASE_SECONDS = env.float("WORKER_LEASE_SECONDS", default=10.0)
TASK_RETRY_BASE_SECONDS = env.float("TASK_RETRY_BASE_SECONDS", default=10.0)
# How often the worker reads Stripe's Events API for webhooks that never arrived, and
# sweeps reservations whose time ran out.
RECONCILE_EVERY_SECONDS = env.float("RECONCILE_EVERY_SECONDS", default=300.0)
SWEEP_EVERY_SECONDS = env.float("SWEEP_EVERY_SECONDS", default=30.0)
# Events younger than this may still arrive as webhooks: reconciliation leaves them a while.
RECONCILE_GRACE_SECONDS = env.float("RECONCILE_GRACE_SECONDS", default=60.0)
# How often the worker looks again at money not settled (payments/money_look.py: a refund
# with no answer, an unfilled order not yet refunded, an event that failed), and compares
# the books with Stripe's (payments/books.py, `check_books`).
MONEY_LOOK_EVERY_SECONDS = env.float("MONEY_LOOK_EVERY_SECONDS", default=60.0)
BOOKS_CHECK_EVERY_SECONDS = env.float("BOOKS_CHECK_EVERY_SECONDS", default=86400.0)

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},  # the SDK logs every request at INFO
        # Two INFO lines per task (started, finished), periodic sweeps included; a failed
        # task is still logged, with its traceback, at ERROR.
        "django_tasks": {"level": "WARNING"},
    },
}
