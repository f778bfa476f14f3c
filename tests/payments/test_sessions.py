"""An order's Checkout Session across failed creates (payments/sessions.py), with Stripe's
Checkout faked in memory (tests/support/fake_checkout.py) as Stripe keeps idempotency keys:
the first answer to a key, errors included, is the answer to every retry with that key."""

from datetime import timedelta
from http import HTTPStatus
from unittest import mock

import pytest
import stripe
from django.utils import timezone

from payments import sessions, settle
from payments.models import Order
from store.models import Product
from tests.factories import ProductFactory
from tests.support.fake_checkout import FakeCheckout
from tests.support.orders import pending_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_stripe():
    fake = FakeCheckout()
    with fake.patched():
        yield fake


def fill(client, product, quantity):
    client.post("/cart/add/", {"product": product.pk, "quantity": quantity})


def available(product: Product) -> int:
    return Product.objects.with_reserved().get(pk=product.pk).available()


def test_a_cart_whose_create_was_answered_with_a_500_checks_out_at_the_next_try(
    client, fake_stripe
):
    """At Stripe the 500 is the key's answer for 24 h: the same key would fail again."""
    product = ProductFactory(stock=5)
    fill(client, product, 2)
    fake_stripe.fail_next("before")

    failed = client.post("/checkout/")
    retried = client.post("/checkout/")

    order = Order.objects.get()
    assert failed["Location"] == "/cart/"
    assert retried.status_code == HTTPStatus.SEE_OTHER
    assert retried["Location"] == f"https://checkout.example/{order.pk}"
    assert fake_stripe.keys == [
        f"amazin-checkout-order-{order.idempotency_token}",
        f"amazin-checkout-order-{order.idempotency_token}-2",
    ]
    assert fake_stripe.open_sessions(order.pk) == [order.stripe_session_id]
    assert available(product) == 3


def test_a_session_made_before_its_500_is_found_and_no_second_one_is_made(client, fake_stripe):
    product = ProductFactory(stock=5)
    fill(client, product, 2)
    fake_stripe.fail_next("after")  # Stripe made the session, then answered 500

    client.post("/checkout/")
    retried = client.post("/checkout/")

    order = Order.objects.get()
    assert retried["Location"] == f"https://checkout.example/{order.pk}"
    assert fake_stripe.created == 1
    assert len(fake_stripe.keys) == 1  # found by listing, not created again
    assert fake_stripe.open_sessions(order.pk) == [order.stripe_session_id]


def test_a_409_while_the_key_runs_is_unknown_and_the_next_try_sends_the_same_key(
    client, fake_stripe
):
    product = ProductFactory(stock=5)
    fill(client, product, 1)
    fake_stripe.fail_next("busy")

    busy = client.post("/checkout/")
    retried = client.post("/checkout/")

    order = Order.objects.get()
    assert busy["Location"] == "/cart/"
    assert order.status == Order.Status.PENDING  # not a refusal: the hold stays
    assert retried["Location"] == f"https://checkout.example/{order.pk}"
    assert fake_stripe.keys[0] == fake_stripe.keys[1]  # no new key: one may be running
    assert fake_stripe.created == 1


def test_a_key_met_with_other_parameters_finds_the_session_its_first_request_made(
    fake_stripe, settings
):
    """The first create's answer was lost, and the retry's parameters differ (a setting
    changed meanwhile): Stripe answers `idempotency_error`. The first request is over, so the
    list is asked, and the session it made is the order's: none is made twice."""
    product = ProductFactory(stock=5)
    order = pending_order((product, 1), stripe_session_id=None)
    fake_stripe.fail_next("lost")
    with pytest.raises(stripe.APIConnectionError):
        sessions.order_session(order=order)
    settings.STRIPE_AUTOMATIC_TAX = True
    with pytest.raises(stripe.IdempotencyError):
        sessions.order_session(order=order)
    order.refresh_from_db()

    session = sessions.order_session(order=order)

    order.refresh_from_db()
    assert fake_stripe.created == 1
    assert order.stripe_session_id == session["id"]
    assert fake_stripe.open_sessions(order.pk) == [session["id"]]


def test_a_retry_later_gets_an_expiry_stripe_accepts_and_holds_the_stock_as_long(fake_stripe):
    """Stripe wants `expires_at` at least 30 minutes ahead: a retry 20 minutes into the hold
    cannot reuse the first create's expiry."""
    product = ProductFactory(stock=5)
    order = pending_order((product, 2), stripe_session_id=None, minutes=11)  # 20 min ago
    fake_stripe.fail_next("before")
    with pytest.raises(stripe.APIError):
        sessions.order_session(order=order)
    order.refresh_from_db()

    session = sessions.order_session(order=order)

    order.refresh_from_db()
    assert session["expires_at"] >= int((timezone.now() + timedelta(minutes=30)).timestamp())
    assert session["expires_at"] == int(order.reserved_until.timestamp())
    later = order.reserved_until - timedelta(seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert available(product) == 3  # the stock is held as long as the session is open


def test_every_retry_of_one_attempt_sends_the_same_parameters(fake_stripe):
    """No answer (a timeout): the retry must send the key with the very same parameters, or
    Stripe answers `idempotency_error` instead of the first request's session."""
    product = ProductFactory(stock=5)
    order = pending_order((product, 1), stripe_session_id=None)
    fake_stripe.fail_next("before")
    with pytest.raises(stripe.APIError):
        sessions.order_session(order=order)
    order.refresh_from_db()
    fake_stripe.fail_next("busy")
    with pytest.raises(stripe.APIError):
        sessions.order_session(order=order)  # attempt 2 starts, no answer
    order.refresh_from_db()

    session = sessions.order_session(order=order)  # attempt 2 again: same key, same body

    assert fake_stripe.keys[1:] == [fake_stripe.keys[1]] * 2
    assert session["status"] == "open"


def test_a_hold_that_ran_out_is_not_renewed_by_a_retry_and_is_released(fake_stripe):
    product = ProductFactory(stock=5)
    order = pending_order((product, 2), stripe_session_id=None, minutes=-1)
    Order.objects.filter(pk=order.pk).update(checkout_attempt_failed=True)
    order.refresh_from_db()

    def refuse_a_past_expiry(**kwargs):  # as Stripe does, before making anything
        if kwargs["expires_at"] < timezone.now().timestamp() + 29 * 60:
            raise stripe.InvalidRequestError("expires_at must be 30 minutes ahead", "expires_at")
        return fake_stripe.create(**kwargs)

    with mock.patch(
        "payments.stripe_api.checkout_session_create", side_effect=refuse_a_past_expiry
    ):
        settled = settle.order_settle_with_stripe(order=order)

    assert settled.status == Order.Status.EXPIRED
    assert available(product) == 5
    assert fake_stripe.created == 0


@pytest.mark.parametrize(
    ("error", "over"),
    [
        (stripe.APIError("boom", http_status=500), True),
        (stripe.APIError("busy", http_status=409), False),
        (stripe.APIError("bad gateway", http_status=502), False),
        (
            stripe.APIError(
                "bad gateway", http_status=502, headers={"Idempotent-Replayed": "true"}
            ),
            True,
        ),
        (stripe.APIConnectionError("timed out"), False),
        (stripe.IdempotencyError("other parameters", http_status=400), True),
        (stripe.InvalidRequestError("No such price", "line_items", http_status=400), False),
    ],
)
def test_which_answers_end_a_key(error, over):
    assert sessions.create_over(error) is over


def test_a_reset_databases_session_with_the_same_id_is_not_taken_for_the_orders(fake_stripe):
    product = ProductFactory(stock=5)
    old = pending_order((product, 1), stripe_session_id=None)
    sessions.order_session(order=old)
    Order.objects.filter(pk=old.pk).delete()  # the database forgets it; Stripe does not
    reused = pending_order((product, 1), pk=old.pk, stripe_session_id=None)
    Order.objects.filter(pk=reused.pk).update(checkout_attempt_failed=True)
    reused.refresh_from_db()

    session = sessions.order_session(order=reused)

    assert session["metadata"]["order_token"] == reused.idempotency_token
    assert fake_stripe.created == 2
