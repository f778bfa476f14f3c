"""Reconciliation: what Stripe sent and never arrived is read back from the Events API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command

from payments import checkout
from payments.models import Order, StripeEvent
from payments.reconcile import stripe_reconcile
from store.models import Product
from tests.support.emulator import Emulator, running_emulator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]


@pytest.fixture
def silent_stripe(settings) -> Iterator[Emulator]:
    """The emulator with no webhook endpoint at all: every delivery is lost (so there is
    nothing to wait for before reconciling)."""
    settings.RECONCILE_GRACE_SECONDS = 0
    with running_emulator(forward_to="") as emulator:
        settings.STRIPE_API_BASE = emulator.api_base
        settings.STRIPE_SECRET_KEY = emulator.api_key
        yield emulator


def seed(emulator: Emulator, name: str = "Lost Teapot") -> str:
    stripe = emulator.client()
    product = stripe.v1.products.create(params={"name": name})
    price = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": 1200, "currency": "usd"}
    )
    stripe.v1.products.update(product.id, params={"default_price": price.id})
    return product.id


def test_catalog_events_that_never_arrived_are_applied(silent_stripe):
    stripe_id = seed(silent_stripe)

    result = stripe_reconcile()

    assert Product.objects.visible().filter(stripe_id=stripe_id, name="Lost Teapot").exists()
    assert result.recorded == result.seen == 3  # product and price created, product updated
    assert result.failed == 0


def test_a_second_run_changes_nothing(silent_stripe):
    seed(silent_stripe)
    # Both runs at one moment after the seed, whatever the wall clock says meanwhile.
    now = max(e.created for e in silent_stripe.client().v1.events.list().data) + 1
    first = stripe_reconcile(now=now)
    events = StripeEvent.objects.count()

    again = stripe_reconcile(now=now)

    assert first.recorded == events == 3
    assert again.recorded == 0
    assert StripeEvent.objects.count() == events


def test_a_paid_session_whose_webhook_never_came_ends_paid_and_stocked(silent_stripe):
    stripe_id = seed(silent_stripe)
    stripe_reconcile()
    product = Product.objects.get(stripe_id=stripe_id)
    Product.objects.filter(pk=product.pk).update(stock=5)
    started = checkout.checkout_start(
        user=None,
        lines=[checkout.LineRequest(product_id=product.pk, quantity=2)],
        email="lost@example.com",
    )
    assert silent_stripe.pay(started.order.stripe_session_id)["paid"]

    call_command("reconcile_stripe")

    order = Order.objects.get(pk=started.order.pk)
    assert order.status == Order.Status.PAID
    assert Product.objects.get(pk=product.pk).stock == 3
    assert StripeEvent.objects.filter(type="checkout.session.completed").count() == 1


def test_events_still_in_flight_are_left_to_the_next_run(silent_stripe, settings):
    seed(silent_stripe)
    settings.RECONCILE_GRACE_SECONDS = 60

    result = stripe_reconcile()

    assert (result.seen, result.recorded) == (0, 0)
    assert not StripeEvent.objects.exists()
