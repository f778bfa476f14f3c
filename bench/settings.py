"""Benchmark settings: the production settings plus a trivial view at /bench/hello."""

import os

from amazin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
if os.environ.get("BENCH_MAIL_LOG"):  # bench/webhooks.py times each email's hand-over
    EMAIL_BACKEND = "bench.mail.TimedBackend"
