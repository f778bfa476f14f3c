"""Benchmark settings: the production settings plus a trivial view at /bench/hello."""

from amazin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
