"""Stripe patched at payments/stripe_api.py, for the tests of fulfilment and its callers."""

from collections.abc import Iterator
from unittest import mock

import pytest
import stripe


@pytest.fixture
def stripe_sessions() -> Iterator[dict[str, dict]]:
    """Stripe's sessions by id, to retrieve and expire; unknown ids raise InvalidRequestError
    as Stripe does, and so does expiring one that is not open."""
    sessions: dict[str, dict] = {}

    def retrieve(session_id):
        if session_id not in sessions:
            raise stripe.InvalidRequestError(f"No such checkout.session: '{session_id}'", "id")
        return sessions[session_id]

    def expire(session_id):
        session = retrieve(session_id)
        if session["status"] != "open":
            raise stripe.InvalidRequestError("Only open sessions can be expired.", "session")
        session["status"] = "expired"
        return session

    with (
        mock.patch("payments.stripe_api.checkout_session_retrieve", side_effect=retrieve),
        mock.patch("payments.stripe_api.checkout_session_expire", side_effect=expire),
    ):
        yield sessions


@pytest.fixture
def refunds():
    with mock.patch(
        "payments.stripe_api.refund_create", return_value={"id": "re_test_1", "object": "refund"}
    ) as create:
        yield create
