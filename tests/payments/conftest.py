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
    """Stripe makes every refund asked for, at once (`succeeded`)."""
    answer = {"id": "re_test_1", "object": "refund", "status": "succeeded"}
    with mock.patch("payments.stripe_api.refund_create", return_value=answer) as create:
        yield create


@pytest.fixture
def stripe_money():
    """Stripe's refunds and disputes in memory, as Stripe keeps them (tests/support)."""
    from tests.support.stripe_money import stripe_money as fake_stripe_money

    with fake_stripe_money() as fake:
        yield fake


@pytest.fixture
def paid_order(db, stripe_money):
    """A paid order as fulfilment leaves it, its payment known to `stripe_money`:
    `paid_order(amount=5000, kind="goods", user=None, lines=[(product, quantity, unit)])`."""
    from django.utils import timezone

    from payments.models import Order
    from tests.factories import OrderFactory, OrderLineFactory, ProductFactory

    def make(amount=5000, kind=Order.Kind.GOODS, lines=None, **fields):
        order = OrderFactory(
            email="kim@example.com",
            status=Order.Status.PAID,
            kind=kind,
            amount_total=amount,
            amount_subtotal=amount,
            paid_at=timezone.now(),
            **fields,
        )
        order.stripe_payment_intent_id = f"pi_test_paid{order.pk}"
        order.save(update_fields=["stripe_payment_intent_id"])
        for product, quantity, unit in lines or [(ProductFactory(stock=3), 2, amount // 2)]:
            OrderLineFactory(order=order, product=product, quantity=quantity, unit_amount=unit)
        if amount:
            stripe_money.pay(order.stripe_payment_intent_id, amount)
        return order

    return make
