from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection

from accounts import services
from accounts.models import Entitlement
from payments import signals
from payments.fulfilment import fulfil_checkout_session
from payments.models import Order
from tests.factories import ProductFactory
from tests.support.orders import paid_session, pending_order

pytestmark = pytest.mark.django_db


def test_grant_for_order_twice_makes_one_entitlement(make_user, make_order):
    user = make_user()
    order = make_order(user)

    first = services.entitlement_grant_for_order(order=order)
    second = services.entitlement_grant_for_order(order=order)

    assert first is not None and first == second
    assert Entitlement.objects.filter(order=order).count() == 1
    assert first.user == user and first.granted_by is None
    assert services.user_has_access(user)


def test_goods_orders_grant_nothing(make_user, make_order):
    user = make_user()

    granted = services.entitlement_grant_for_order(order=make_order(user, kind="goods"))

    assert granted is None
    assert not Entitlement.objects.exists()
    assert not services.user_has_access(user)


def test_an_access_order_without_a_user_grants_nothing(make_order):
    granted = services.entitlement_grant_for_order(order=make_order(None))

    assert granted is None
    assert not Entitlement.objects.exists()


def test_refund_revokes(make_user, make_order):
    user = make_user()
    order = make_order(user)
    services.entitlement_grant_for_order(order=order)

    revoked = services.entitlement_revoke_for_order(order=order)

    assert revoked == 1
    entitlement = Entitlement.objects.get(order=order)
    assert entitlement.revoked_at is not None
    assert not services.user_has_access(user)


def test_refund_then_late_fulfilment_does_not_grant_again(make_user, make_order):
    user = make_user()
    order = make_order(user)
    services.entitlement_grant_for_order(order=order)
    services.entitlement_revoke_for_order(order=order)

    again = services.entitlement_grant_for_order(order=order)

    assert again is not None and again.revoked_at is not None
    assert Entitlement.objects.count() == 1
    assert not services.user_has_access(user)


def test_revoking_twice_is_harmless(make_user, make_order):
    order = make_order(make_user())
    services.entitlement_grant_for_order(order=order)
    services.entitlement_revoke_for_order(order=order)

    assert services.entitlement_revoke_for_order(order=order) == 0


def test_paying_twice_keeps_one_live_grant_and_a_refund_of_one_keeps_access(make_user, make_order):
    user = make_user()
    first, second = make_order(user), make_order(user)
    services.entitlement_grant_for_order(order=first)

    services.entitlement_grant_for_order(order=second)

    assert Entitlement.objects.live().filter(user=user).count() == 1

    services.entitlement_revoke_for_order(order=first)

    assert services.user_has_access(user)
    assert Entitlement.objects.live().get(user=user).order == second


def test_refund_of_the_only_paid_order_leaves_no_access(make_user, make_order):
    user = make_user()
    paid = make_order(user)
    make_order(user, status="refunded")
    make_order(user, status="pending")
    services.entitlement_grant_for_order(order=paid)

    services.entitlement_revoke_for_order(order=paid)

    assert not services.user_has_access(user)


def test_staff_grant_and_revoke_record_who(make_user):
    staff, member = make_user(is_staff=True), make_user()

    granted = services.entitlement_grant(user=member, by=staff, note="Competition winner")
    assert services.user_has_access(member)
    assert (granted.granted_by, granted.note, granted.order) == (staff, "Competition winner", None)

    services.entitlement_revoke(entitlement=granted, by=staff)

    granted.refresh_from_db()
    assert granted.revoked_by == staff and granted.revoked_at is not None
    assert not services.user_has_access(member)


def test_staff_grant_to_a_member_returns_the_live_grant(make_user):
    staff, member = make_user(is_staff=True), make_user()
    first = services.entitlement_grant(user=member, by=staff)

    second = services.entitlement_grant(user=member, by=staff)

    assert first == second
    assert Entitlement.objects.count() == 1


def test_anonymous_has_no_access_and_costs_no_query(django_assert_num_queries):
    from django.contrib.auth.models import AnonymousUser

    with django_assert_num_queries(0):
        assert not services.user_has_access(AnonymousUser())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_grants_for_one_order_make_one_entitlement(make_user, make_order) -> None:
    user = make_user()
    order = make_order(user)
    callers = 8
    barrier = threading.Barrier(callers)
    results: list[object] = []
    errors: list[BaseException] = []

    def grant() -> None:
        try:
            barrier.wait(timeout=10)
            # As fulfilment does: inside its own transaction, with the order row in hand.
            from django.db import transaction

            with transaction.atomic():
                results.append(services.entitlement_grant_for_order(order=order))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=grant) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert len(results) == callers
    assert Entitlement.objects.filter(order=order).count() == 1
    entitlement = Entitlement.objects.get(order=order)
    assert all(result == entitlement for result in results)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_click_on_purchase_opens_one_session(make_user) -> None:
    from tests.support.fake_checkout import FakeCheckout

    ProductFactory(with_price__lookup_key="amazin_access_pass", stock=0)
    user = make_user()
    fake = FakeCheckout()
    results: list[services.AccessPurchase] = []
    barrier = threading.Barrier(2)

    def click() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(services.access_purchase_start(user=user))
        finally:
            connection.close()

    with fake.patched():
        threads = [threading.Thread(target=click) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert len(fake.sessions) == 1
    assert len({result.url for result in results}) == 1
    assert {result.outcome for result in results} <= {
        services.PurchaseOutcome.STARTED,
        services.PurchaseOutcome.RESUMED,
    }
    assert Order.objects.filter(user=user, kind=Order.Kind.ACCESS).count() == 1


@pytest.mark.django_db(transaction=True)
def test_purchase_asks_stripe_with_no_transaction_open(make_user) -> None:
    """No network call inside a database transaction: the user's row lock that serialises
    two clicks is released before Stripe is asked."""
    from tests.support.fake_checkout import FakeCheckout

    ProductFactory(with_price__lookup_key="amazin_access_pass", stock=0)
    user = make_user()
    fake = FakeCheckout()
    in_transaction: list[bool] = []

    def create(**kwargs):
        in_transaction.append(connection.in_atomic_block)
        return fake.create(**kwargs)

    with fake.patched(), mock.patch("payments.stripe_api.checkout_session_create", create):
        first = services.access_purchase_start(user=user)
        again = services.access_purchase_start(user=user)

    assert in_transaction == [False]
    assert first.outcome is services.PurchaseOutcome.STARTED
    assert again.outcome is services.PurchaseOutcome.RESUMED and again.url == first.url


# --- payments announces, accounts listens ----------------------------------------------------


def paid_access_order(user):
    order = pending_order((ProductFactory(), 1), user=user, kind=Order.Kind.ACCESS)
    return order, paid_session(order)


def test_the_entitlement_commits_or_rolls_back_with_the_paid_order(make_user):
    """Receivers of order_paid run inside fulfilment's transaction: if anything after the
    grant fails, neither the order's "paid" nor the entitlement is kept."""
    user = make_user()
    order, session = paid_access_order(user)

    def later_failure(sender, **kwargs):
        assert Entitlement.objects.filter(order=kwargs["order"]).exists()  # granted already
        raise RuntimeError("after the grant")

    signals.order_paid.connect(later_failure, dispatch_uid="test_later_failure")
    try:
        with (
            mock.patch("payments.stripe_api.checkout_session_retrieve", return_value=session),
            pytest.raises(RuntimeError),
        ):
            fulfil_checkout_session(session_id=session["id"])
    finally:
        signals.order_paid.disconnect(dispatch_uid="test_later_failure")

    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert not Entitlement.objects.exists()

    with mock.patch("payments.stripe_api.checkout_session_retrieve", return_value=session):
        fulfil_checkout_session(session_id=session["id"])

    assert Entitlement.objects.get().order == order


def test_a_refund_announced_by_payments_revokes_access(make_user):
    user = make_user()
    order, _ = paid_access_order(user)
    services.entitlement_grant_for_order(order=order)

    signals.order_refunded.send(sender=Order, order=order)

    assert not services.user_has_access(user)
