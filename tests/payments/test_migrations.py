"""Pending orders from before store.Reservation keep holding their stock after migrating."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("payments", "0001_initial"), ("store", "0001_initial")]
AFTER = [("payments", "0002_reservations_for_pending_orders")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_latest():
    """Going back to BEFORE also unapplies the apps that depend on those migrations."""
    yield
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())


def test_running_holds_of_pending_goods_orders_become_reservations():
    old = migrate(BEFORE)
    Product = old.get_model("store", "Product")
    Order = old.get_model("payments", "Order")
    OrderLine = old.get_model("payments", "OrderLine")
    teapot = Product.objects.create(stripe_id="prod_teapot", stock=5)
    cups = Product.objects.create(stripe_id="prod_cups", stock=5)
    until = timezone.now() + timedelta(minutes=20)

    def order(status, kind="goods", minutes=20):
        created = Order.objects.create(
            status=status,
            kind=kind,
            currency="usd",
            reserved_until=timezone.now() + timedelta(minutes=minutes),
        )
        for product, quantity in ((teapot, 2), (cups, 1)):
            OrderLine.objects.create(
                order=created,
                product=product,
                stripe_price_id="price_x",
                quantity=quantity,
                unit_amount=100,
                currency="usd",
            )
        return created

    holding = order("pending")
    Order.objects.filter(pk=holding.pk).update(reserved_until=until)
    order("pending", minutes=-1)
    order("paid")
    order("pending", kind="access")

    new = migrate(AFTER)
    Reservation = new.get_model("store", "Reservation")

    assert sorted(
        Reservation.objects.values_list("product__stripe_id", "quantity", "holder", "expires_at")
    ) == [
        ("prod_cups", 1, f"order:{holding.pk}", until),
        ("prod_teapot", 2, f"order:{holding.pk}", until),
    ]


def test_orders_get_idempotency_tokens_and_requests_in_flight_keep_their_keys():
    old = migrate([("payments", "0007_order_status_refund_pending_and_partial")])
    Order = old.get_model("payments", "Order")
    ids = {
        status: Order.objects.create(status=status, currency="usd").pk
        for status in ("pending", "refund_pending", "paid", "expired", "refunded")
    }

    new = migrate([("payments", "0008_order_idempotency_token")])
    tokens = dict(new.get_model("payments", "Order").objects.values_list("pk", "idempotency_token"))

    # A session create or a refund that may be unanswered is asked again with the same key.
    assert tokens[ids["pending"]] == str(ids["pending"])
    assert tokens[ids["refund_pending"]] == str(ids["refund_pending"])
    for status in ("paid", "expired", "refunded"):
        assert len(tokens[ids[status]]) == 32
    assert len(set(tokens.values())) == len(tokens)
