from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from tests.support.stripe_events import WebhookPoster


@pytest.fixture
def webhook(client) -> WebhookPoster:  # type: ignore[no-untyped-def]
    """Post Stripe-signed events to /stripe/webhook/ as Stripe would."""
    return WebhookPoster(client)


@pytest.fixture(scope="session", autouse=True)
def _stop_live_broker(django_db_setup):  # type: ignore[no-untyped-def]
    """Pages that open /live/ start this process's broker; close its connections first,
    so the test database can be dropped at the end of the session."""
    yield
    from store import live

    live.get_broker().stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings.configured or connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="concurrency needs PostgreSQL (row locks); run `make test`")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
