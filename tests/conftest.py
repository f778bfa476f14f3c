from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests.support import tasks
from tests.support.emulator import Emulator, running_emulator
from tests.support.stripe_events import WebhookPoster
from tests.support.transactions import stripe_calls_checked


@pytest.fixture
def emulated_stripe(settings, live_server):
    """Start the Stripe emulator, forwarding its webhooks to the live server, and point
    the app at it: `with emulated_stripe(chaos=True) as emulator: ...`."""

    @contextmanager
    def start(**options: Any) -> Iterator[Emulator]:
        with running_emulator(
            forward_to=f"{live_server.url}/stripe/webhook/",
            webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
            **options,
        ) as emulator:
            settings.STRIPE_API_BASE = emulator.api_base
            settings.STRIPE_SECRET_KEY = emulator.api_key
            settings.SITE_URL = live_server.url
            yield emulator

    return start


@pytest.fixture(autouse=True)
def _no_deferred_tasks_leak() -> Iterator[None]:
    """Retries a test deferred (tests/support/tasks.py) do not reach the next test."""
    tasks.DEFERRED.clear()
    yield
    tasks.DEFERRED.clear()


@pytest.fixture(autouse=True)
def _shipping_rates(request):
    """Checkout looks its shipping rates up at Stripe once per process. Tests that patch
    Stripe's module get two fixed rate ids instead; tests against the emulator find or make
    real ones (a new emulator each time, so nothing is remembered between tests)."""
    from unittest import mock

    from payments import shipping

    shipping.cache_clear()
    # Markers only: `request.keywords` also holds the names of the test's folders (a
    # checkout in a folder called "emulator" would look like an emulator test).
    real = "emulated_stripe" in request.fixturenames or any(
        request.node.get_closest_marker(marker) for marker in ("emulator", "browser")
    )
    if real:
        yield
    else:
        with mock.patch(
            "payments.shipping.shipping_rate_ids",
            return_value=["shr_test_standard", "shr_test_express"],
        ):
            yield
    shipping.cache_clear()


@pytest.fixture(autouse=True)
def _no_refunds_at_stripe(request):
    """Fulfilment reads a payment's refunds and disputes from Stripe as it fills an order.
    Tests that patch Stripe's module are told there are none (a test patching these itself
    says otherwise); tests against the emulator ask it."""
    from unittest import mock

    if "emulated_stripe" in request.fixturenames or any(
        marker in request.keywords for marker in ("emulator", "browser")
    ):
        yield
        return
    with (
        mock.patch("payments.stripe_api.refunds_of_payment", return_value=[]),
        mock.patch("payments.stripe_api.disputes_of_payment", return_value=[]),
    ):
        yield


@pytest.fixture
def webhook(client) -> WebhookPoster:
    """Post Stripe-signed events to /stripe/webhook/ as Stripe would."""
    return WebhookPoster(client)


@pytest.fixture(scope="session", autouse=True)
def _stop_live_broker(django_db_setup):
    """Pages that open /live/ start this process's broker; close its connections first,
    so the test database can be dropped at the end of the session."""
    yield
    from live.broker import get_broker

    get_broker().stop()


@pytest.fixture(scope="module", autouse=True)
def _live_broker_per_module() -> Iterator[None]:
    """A module whose pages started this process's broker stops it when it ends, and the
    next one that needs it gets a new one: its dispatcher thread does not run, read the
    database and log, behind unrelated tests. (Its logged tracebacks once raced another
    test's `ast.parse` into CPython 3.11's "AST constructor recursion depth mismatch".)"""
    yield
    from live import broker

    if broker._broker is not None and broker._broker.running:
        broker._broker.stop()
        broker._broker = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """No Stripe request inside a database transaction, in any test (tests/support/
    transactions.py): a test that makes one fails, naming the request."""
    with stripe_calls_checked() as found:
        result = yield
    if found:
        raise AssertionError("Stripe was called inside a transaction:\n" + "\n".join(found))
    return result


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings.configured or connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="concurrency needs PostgreSQL (row locks); run `make test`")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
