"""The suite-wide check that Stripe is never called inside a transaction sees what it must."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.support.emulator import running_emulator
from tests.support.transactions import stripe_calls_checked

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def client():
    with running_emulator() as emulator:
        yield emulator.client()


@pytest.mark.django_db(transaction=True)
def test_a_call_inside_atomic_is_found(client):
    with stripe_calls_checked() as found:
        client.v1.products.list({"limit": 1})
        with transaction.atomic():
            client.v1.products.list({"limit": 1})

    assert len(found) == 1 and "GET" in found[0] and "/v1/products" in found[0]


@pytest.mark.django_db
def test_the_tests_own_transaction_is_not_counted(client):
    with stripe_calls_checked() as found:
        client.v1.products.list({"limit": 1})
        with transaction.atomic():
            client.v1.products.list({"limit": 1})

    assert len(found) == 1
