"""The contract tests' target: a fresh emulator (default), or Stripe's test mode.

See tests/support/contract.py. Every test here takes `target`; tests that need the
emulator's test endpoints call `target.emulator_only(reason)`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from tests.support.contract import Target, stripe_key, wants_stripe
from tests.support.emulator import RECORD_ENV, running_emulator


@pytest.fixture(autouse=True, scope="module")
def _not_recorded() -> Iterator[None]:
    """These tests send what Stripe refuses on purpose (to show it is refused): keep them
    out of the suite's check that the shop never sends such a request
    (tests/emulator/conftest.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(RECORD_ENV, raising=False)
        yield


@pytest.fixture(scope="session")
def _stripe_client() -> stripe.StripeClient | None:
    if not wants_stripe():
        return None
    key = stripe_key()
    if key is None:
        pytest.skip("make test-stripe needs STRIPE_SECRET_KEY=sk_test_... (none set)")
    # Retries as the shop's client makes them: the SDK retries 409s and 5xx.
    return stripe.StripeClient(key, max_network_retries=2)


@pytest.fixture
def target(_stripe_client: stripe.StripeClient | None) -> Iterator[Target]:
    if _stripe_client is not None:
        at_stripe = Target(client=_stripe_client)
        try:
            yield at_stripe
        finally:
            at_stripe.cleanup()
        return
    with running_emulator() as emulator:
        client = stripe.StripeClient(
            emulator.api_key, base_addresses={"api": emulator.api_base}, max_network_retries=2
        )
        emulated = Target(client=client, emulator=emulator)
        try:
            yield emulated
        finally:
            emulated.cleanup()
