"""Stock held for a while, given back, and sold: store/reservations.py and the reads on it."""

from datetime import timedelta
from http import HTTPStatus
from unittest import mock

import pytest
from django.db import IntegrityError
from django.utils import timezone

from store import reservations
from store.models import (
    Product,
    Reservation,
    reservations_ended_product_ids,
    reservations_next_expiry,
)
from tests.factories import ProductFactory, ReservationFactory

pytestmark = pytest.mark.django_db


def available(product: Product) -> int:
    return Product.objects.with_reserved().get(pk=product.pk).available()


def in_minutes(minutes: float):
    return timezone.now() + timedelta(minutes=minutes)


def test_reserving_holds_units_until_released():
    product = ProductFactory(stock=5)

    with mock.patch("store.live.publish_on_commit") as publish:
        reservations.reservation_create(
            holder="order:1", quantities={product.pk: 3}, expires_at=in_minutes(30)
        )

    assert available(product) == 2
    assert Product.objects.get(pk=product.pk).stock == 5
    publish.assert_called_once_with([product.pk])

    assert reservations.reservations_release(holders=["order:1"]) == [product.pk]

    assert available(product) == 5
    assert not Reservation.objects.exists()


@pytest.mark.parametrize(
    ("stock", "message"),
    [
        (3, "Sorry, Kettle is sold out."),
        (5, "Sorry, only 2 of Kettle left: lower the quantity and try again."),
    ],
)
def test_reserving_more_than_available_is_refused_whole(stock, message):
    plenty = ProductFactory(stock=100)
    kettle = ProductFactory(name="Kettle", stock=stock)
    ReservationFactory(product=kettle, quantity=3)

    with pytest.raises(reservations.ReservationError) as refused:
        reservations.reservation_create(
            holder="order:2", quantities={plenty.pk: 1, kettle.pk: 3}, expires_at=in_minutes(30)
        )

    assert refused.value.message == message
    assert refused.value.product == kettle
    assert not Reservation.objects.filter(holder="order:2").exists()


def test_expired_reservations_hold_nothing():
    product = ProductFactory(stock=2)
    ReservationFactory(product=product, quantity=2, expires_at=in_minutes(-1))

    reservations.reservation_create(
        holder="order:3", quantities={product.pk: 2}, expires_at=in_minutes(30)
    )

    assert Product.objects.with_reserved().get(pk=product.pk).reserved == 2


def test_release_gives_back_only_that_holders_units():
    product = ProductFactory(stock=5)
    ReservationFactory(product=product, quantity=1, holder="order:1")
    ReservationFactory(product=product, quantity=2, holder="order:2")

    reservations.reservations_release(holders=["order:1"])

    assert list(Reservation.objects.values_list("holder", flat=True)) == ["order:2"]
    assert available(product) == 3


def test_releasing_nothing_publishes_nothing():
    with mock.patch("store.live.publish_on_commit") as publish:
        assert reservations.reservations_release(holders=["order:404"]) == []

    publish.assert_not_called()


def test_taking_stock_sells_the_units_and_drops_the_holders_reservations():
    teapot, cups = ProductFactory(stock=4), ProductFactory(stock=6)
    ReservationFactory(product=teapot, quantity=2, holder="order:1")
    ReservationFactory(product=cups, quantity=3, holder="order:1")
    ReservationFactory(product=teapot, quantity=1, holder="order:2")

    with mock.patch("store.live.publish_on_commit") as publish:
        short = reservations.stock_take(holder="order:1", quantities={teapot.pk: 2, cups.pk: 3})

    assert short is None
    assert Product.objects.get(pk=teapot.pk).stock == 2
    assert Product.objects.get(pk=cups.pk).stock == 3
    assert list(Reservation.objects.values_list("holder", flat=True)) == ["order:2"]
    assert available(teapot) == 1
    publish.assert_called_once_with(sorted([teapot.pk, cups.pk]))


def test_taking_more_than_stock_takes_nothing_and_says_what_was_short():
    plenty = ProductFactory(stock=10)
    short_one = ProductFactory(name="Kettle", stock=1)
    ReservationFactory(product=plenty, quantity=2, holder="order:1")

    short = reservations.stock_take(holder="order:1", quantities={plenty.pk: 2, short_one.pk: 3})

    assert short == reservations.Shortage(product=short_one, wanted=3, stock=1)
    assert Product.objects.get(pk=plenty.pk).stock == 10
    assert Product.objects.get(pk=short_one.pk).stock == 1
    assert Reservation.objects.filter(holder="order:1").exists()


def test_taking_stock_does_not_need_a_live_reservation():
    product = ProductFactory(stock=1)

    assert reservations.stock_take(holder="order:9", quantities={product.pk: 1}) is None

    assert Product.objects.get(pk=product.pk).stock == 0


def test_next_expiry_reads_only_live_reservations():
    product, other = ProductFactory(), ProductFactory()
    soon, later = in_minutes(5), in_minutes(20)
    ReservationFactory(product=product, expires_at=in_minutes(-1))
    ReservationFactory(product=product, expires_at=later)
    ReservationFactory(product=other, expires_at=soon)

    annotated = dict(Product.objects.with_next_expiry().values_list("pk", "next_expiry"))

    assert reservations_next_expiry() == soon
    assert annotated == {product.pk: later, other.pk: soon}


def test_nothing_reserved_has_no_next_expiry():
    ReservationFactory(expires_at=in_minutes(-1))

    assert reservations_next_expiry() is None


def test_ended_product_ids_are_those_whose_reservations_ran_out_in_the_window():
    ended, running, earlier = ProductFactory(), ProductFactory(), ProductFactory()
    now = timezone.now()
    ReservationFactory(product=ended, expires_at=now - timedelta(seconds=5))
    ReservationFactory(product=running, expires_at=now + timedelta(seconds=5))
    ReservationFactory(product=earlier, expires_at=now - timedelta(minutes=5))

    found = reservations_ended_product_ids(since=now - timedelta(seconds=10), until=now)

    assert found == {ended.pk}


def test_a_reservation_holds_at_least_one_unit():
    with pytest.raises(IntegrityError):
        ReservationFactory(quantity=0)


def test_staff_see_holds_in_the_admin_and_cannot_edit_them(admin_client):
    reservation = ReservationFactory(holder="order:77", quantity=2)

    listing = admin_client.get("/admin/store/reservation/")
    add = admin_client.get("/admin/store/reservation/add/")
    change = admin_client.post(
        f"/admin/store/reservation/{reservation.pk}/change/", {"quantity": 9}
    )

    assert listing.status_code == HTTPStatus.OK
    assert "order:77" in listing.content.decode()
    assert add.status_code == HTTPStatus.FORBIDDEN
    assert change.status_code == HTTPStatus.FORBIDDEN
    assert Reservation.objects.get().quantity == 2


def test_extending_holds_longer_never_shorter_and_brings_back_a_lapsed_hold():
    kettle, mug = ProductFactory(stock=5), ProductFactory(stock=5)
    ReservationFactory(product=kettle, quantity=2, holder="order:1", expires_at=in_minutes(-1))
    ReservationFactory(product=mug, quantity=1, holder="order:1", expires_at=in_minutes(600))
    ReservationFactory(product=mug, quantity=1, holder="order:2", expires_at=in_minutes(5))
    lapsed = available(kettle)

    with mock.patch("store.live.publish_on_commit") as publish:
        extended = reservations.reservations_extend(holder="order:1", expires_at=in_minutes(60))

    assert extended == sorted([kettle.pk, mug.pk])
    assert (lapsed, available(kettle), available(mug)) == (5, 3, 3)
    held = dict(
        Reservation.objects.filter(holder="order:1").values_list("product_id", "expires_at")
    )
    assert held[kettle.pk] < in_minutes(61) < held[mug.pk]  # the longer hold is kept
    assert Reservation.objects.get(holder="order:2").expires_at < in_minutes(6)
    publish.assert_called_once_with(sorted([kettle.pk, mug.pk]))
