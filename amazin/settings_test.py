"""Test settings: the real settings with fixed Stripe keys, fast hashing and local mail."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "amazin-tests-only-secret-key-0123456789-abcdefghijklmnop")

from amazin.settings import *  # noqa: E402,F403

STRIPE_SECRET_KEY = "sk_test_amazin_tests"
STRIPE_PUBLISHABLE_KEY = "pk_test_amazin_tests"
STRIPE_WEBHOOK_SECRET = "whsec_amazin_tests"
STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: a test that talks to Stripe says so
ACCESS_PRICE_ID = ""
SITE_URL = "http://testserver"
HTTPS = False
SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run in-process as their transaction commits (tests/support/tasks.py); the database
# backend and the worker have tests of their own.
TASKS = {"default": {"BACKEND": "tests.support.tasks.AfterCommitBackend"}}
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Serve static files from the app folders; no collectstatic needed for tests.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file per test run rather than shared-cache memory: there, two live_server threads
    # (a webhook and the success page at once) fail with "database table is locked" instead
    # of queueing on the write lock as the real (file, WAL, IMMEDIATE) database does.
    # In the temp dir: SQLite's -wal/-shm companions outlive the database file.
    _test_db = Path(tempfile.gettempdir()) / f"amazin-test-{os.getpid()}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}  # noqa: F405
