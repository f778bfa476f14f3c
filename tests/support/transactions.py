"""DESIGN's money rule, checked on every test: no call to Stripe inside a database transaction.

A request the SDK really sends (to the emulator, through the fault proxy, anywhere) while the
calling thread's connection is inside an `atomic` block that the code under test opened would
hold row locks (on SQLite, the whole database) for as long as Stripe takes, and tie a
commit to an answer that may never come. Tests that patch `payments.stripe_api` send nothing
and are not checked; the end-to-end tests are.

The test's own transaction (pytest-django wraps a non-transactional test in `atomic` blocks
before it starts) is the baseline: only blocks opened after the test body began count, on the
test's thread. On any other thread (the live server's, a test's workers) every block counts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from django.db import connections
from stripe._http_client import HTTPClient

# The SDK's own sender, taken before any check wraps it: a check inside another (this
# module's tests) sends through it directly, so only the innermost check sees a request.
_SEND = HTTPClient._request_with_retries_internal


def _depths() -> dict[str, int]:
    return {c.alias: len(c.atomic_blocks) for c in connections.all(initialized_only=True)}


@contextmanager
def stripe_calls_checked() -> Iterator[list[str]]:
    """Yields the list of Stripe requests made inside a transaction while the block runs."""
    test_thread = threading.get_ident()
    baseline = _depths()
    found: list[str] = []

    def checked(self: HTTPClient, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        allowed = baseline if threading.get_ident() == test_thread else {}
        for alias, depth in _depths().items():
            if depth > allowed.get(alias, 0):
                found.append(f"{method.upper()} {url} inside a transaction on {alias!r}")
        return _SEND(self, method, url, *args, **kwargs)

    with mock.patch.object(HTTPClient, "_request_with_retries_internal", checked):
        yield found
