"""Shipping rates: made once per spec at Stripe, each under its own idempotency key."""

from unittest import mock

import pytest

from payments import shipping

# The real one: tests that patch Stripe's module get fixed rate ids (tests/conftest.py).
rate_ids = shipping.shipping_rate_ids


@pytest.fixture
def stripe_rates():
    """Stripe's rate create as far as keys go: a key already used is answered with the
    rate it first made."""
    by_key: dict[str, dict] = {}

    def create(*, idempotency_key, **params):
        if idempotency_key not in by_key:
            by_key[idempotency_key] = {"id": f"shr_{len(by_key)}", **params}
        return by_key[idempotency_key]

    with (
        mock.patch("payments.stripe_api.shipping_rates_active", return_value=[]),
        mock.patch("payments.stripe_api.shipping_rate_create", side_effect=create) as created,
    ):
        yield created


def test_two_specs_that_read_alike_never_share_a_key(settings, stripe_rates):
    # Joined with "|", both read "std|usd|500|usd|500|Fast".
    settings.SHIPPING_RATES = "std:usd|500|Fast:500,std|usd|500:Fast:500"

    ids = rate_ids(currency="usd")

    keys = [call.kwargs["idempotency_key"] for call in stripe_rates.call_args_list]
    assert len(set(keys)) == 2
    assert len(set(ids)) == 2


def test_the_same_spec_always_has_the_same_key(settings, stripe_rates):
    settings.SHIPPING_RATES = "std:Standard:500"
    rate_ids(currency="usd")
    shipping.cache_clear()

    rate_ids(currency="usd")

    first, second = (call.kwargs["idempotency_key"] for call in stripe_rates.call_args_list)
    assert first == second
