"""checkout_start and POST /checkout/, with Stripe patched at payments/stripe_api.py."""

from datetime import timedelta
from http import HTTPStatus
from unittest import mock

import pytest
import stripe
from django.test import Client
from django.utils import timezone

from cart.models import Cart, CartItem
from payments import checkout, sessions
from payments.models import Order
from store.models import Product, Reservation
from tests.factories import ProductFactory, UserFactory
from tests.support.fake_checkout import FakeCheckout
from tests.support.orders import pending_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_stripe():
    return FakeCheckout()


@pytest.fixture
def stripe_create(fake_stripe):
    with fake_stripe.patched() as create:
        yield create


def shopper(**kwargs):
    # UserFactory sets the password without saving it, which would log force_login out again.
    user = UserFactory(**kwargs)
    user.save()
    return user


def fill(client, *pairs):
    for product, quantity in pairs:
        client.post("/cart/add/", {"product": product.pk, "quantity": quantity}, follow=True)


def available(product: Product) -> int:
    return Product.objects.with_reserved().get(pk=product.pk).available()


def test_checkout_reserves_creates_a_pending_order_and_redirects_303(client, stripe_create):
    teapot = ProductFactory(name="Teapot", stock=5, with_price__unit_amount=2500)
    cups = ProductFactory(name="Cups", stock=9, with_price__unit_amount=400)
    fill(client, (teapot, 2), (cups, 3))
    before = timezone.now()

    response = client.post("/checkout/")

    order = Order.objects.get()
    assert response.status_code == HTTPStatus.SEE_OTHER
    assert response["Location"] == f"https://checkout.example/{order.pk}"
    assert order.status == Order.Status.PENDING
    assert order.stripe_session_id == f"cs_test_fake{order.pk}"
    assert order.currency == "usd"
    assert order.cart == Cart.objects.get()
    lines = {line.product_id: line for line in order.lines.all()}
    assert (lines[teapot.pk].quantity, lines[teapot.pk].unit_amount) == (2, 2500)
    assert lines[teapot.pk].stripe_price_id == teapot.price.stripe_id
    assert (available(teapot), available(cups)) == (3, 6)
    assert Product.objects.get(pk=teapot.pk).stock == 5  # reserved, not taken
    assert CartItem.objects.count() == 2  # the cart waits for the payment
    assert before + timedelta(minutes=30) <= order.reserved_until
    assert order.reserved_until <= timezone.now() + timedelta(minutes=32)


def test_session_gets_server_prices_reference_expiry_urls_and_idempotency_key(
    client, stripe_create, settings
):
    settings.SITE_URL = "https://shop.example"
    user = shopper(email="kim@example.com")
    client.force_login(user)
    product = ProductFactory(stock=5)
    fill(client, (product, 2))

    client.post("/checkout/", {"price": "price_evil", "unit_amount": 1})

    order = Order.objects.get()
    kwargs = stripe_create.call_args.kwargs
    assert kwargs["line_items"] == [(product.price.stripe_id, 2)]
    assert kwargs["order_id"] == order.pk
    assert kwargs["customer_email"] == "kim@example.com"
    assert kwargs["expires_at"] == int(order.reserved_until.timestamp())
    assert kwargs["success_url"] == (
        "https://shop.example/checkout/success/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert kwargs["cancel_url"] == (
        "https://shop.example/checkout/cancel/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert kwargs["automatic_tax"] is False
    assert kwargs["idempotency_key"] == f"amazin-checkout-order-{order.idempotency_token}"
    assert order.user == user and order.email == "kim@example.com"


def test_a_new_order_under_a_reused_id_never_meets_the_old_orders_key(
    client, fake_stripe, stripe_create
):
    """A reset or restored database hands an id out again within Stripe's 24 h key window:
    the new order's key differs, so Stripe makes it its own session, not the old order's."""
    product = ProductFactory(stock=5)
    fill(client, (product, 1))
    client.post("/checkout/")
    old = Order.objects.get()
    Order.objects.filter(pk=old.pk).delete()  # the database forgets it; Stripe does not
    reused = pending_order((product, 1), pk=old.pk, stripe_session_id=None)

    sessions.order_session(order=reused)

    keys = [call.kwargs["idempotency_key"] for call in stripe_create.call_args_list]
    assert fake_stripe.created == 2  # with a key from the id alone, Stripe answers the old one
    assert keys[0] != keys[1]
    assert keys[1] == f"amazin-checkout-order-{reused.idempotency_token}"


def test_automatic_tax_follows_the_setting(client, stripe_create, settings):
    settings.STRIPE_AUTOMATIC_TAX = True
    fill(client, (ProductFactory(), 1))

    client.post("/checkout/")

    assert stripe_create.call_args.kwargs["automatic_tax"] is True


def test_empty_cart_goes_back_to_the_cart_with_a_message(client, stripe_create):
    response = client.post("/checkout/", follow=True)

    assert response.redirect_chain == [("/cart/", HTTPStatus.FOUND)]
    assert "Your cart is empty." in [str(m) for m in response.context["messages"]]
    assert not Order.objects.exists()
    stripe_create.assert_not_called()


def test_not_enough_stock_names_the_product_and_reserves_nothing(client, stripe_create):
    kettle = ProductFactory(name="Kettle", stock=3)
    fill(client, (kettle, 3))
    Product.objects.filter(pk=kettle.pk).update(stock=2)

    response = client.post("/checkout/", follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Sorry, only 2 of Kettle left: lower the quantity and try again."]
    assert not Order.objects.exists()
    assert available(kettle) == 2
    stripe_create.assert_not_called()


def test_mixed_currencies_are_refused(client, stripe_create):
    fill(client, (ProductFactory(with_price__currency="usd"), 1))
    fill(client, (ProductFactory(with_price__currency="eur"), 1))

    response = client.post("/checkout/", follow=True)

    [message] = [str(m) for m in response.context["messages"]]
    assert "different currencies (EUR, USD)" in message
    assert not Order.objects.exists()


def test_a_product_archived_since_adding_is_refused_by_name(client, stripe_create):
    gone = ProductFactory(name="Old Lamp")
    fill(client, (gone, 1))
    Product.objects.filter(pk=gone.pk).update(active=False)

    response = client.post("/checkout/", follow=True)

    assert [str(m) for m in response.context["messages"]] == [
        "Old Lamp is no longer for sale: remove it."
    ]
    assert not Order.objects.exists()


def test_stripe_unreachable_keeps_the_hold_and_the_next_try_gets_the_same_session(
    client, fake_stripe
):
    # settings_test points STRIPE_API_BASE at a closed port: the SDK's real request path fails.
    product = ProductFactory(stock=4)
    fill(client, (product, 3))

    response = client.post("/checkout/", follow=True)

    assert response.redirect_chain == [("/cart/", HTTPStatus.FOUND)]
    [message] = [str(m) for m in response.context["messages"]]
    assert "could not reach our payment provider" in message
    order = Order.objects.get()
    # No answer is not "no session": one may exist, so the stock stays held for it.
    assert order.status == Order.Status.PENDING
    assert available(product) == 1
    assert dict(CartItem.objects.values_list("product_id", "quantity")) == {product.pk: 3}
    with fake_stripe.patched():
        retried = client.post("/checkout/")
    assert retried["Location"] == f"https://checkout.example/{order.pk}"
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "error",
    [
        stripe.APIConnectionError("down"),
        stripe.APIError("500 from Stripe", http_status=500),
        stripe.IdempotencyError("another request is creating it"),
    ],
)
def test_an_unanswered_session_create_keeps_the_order_for_the_next_try(client, error):
    product = ProductFactory(stock=4)
    fill(client, (product, 1))

    with mock.patch("payments.stripe_api.checkout_session_create", side_effect=error):
        response = client.post("/checkout/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/cart/"
    assert Order.objects.get().status == Order.Status.PENDING
    assert available(product) == 3
    assert CartItem.objects.count() == 1


def test_a_refused_session_create_fails_the_order_and_frees_the_stock(client):
    product = ProductFactory(stock=4)
    fill(client, (product, 1))
    error = stripe.InvalidRequestError("No such price", param="line_items")

    with mock.patch("payments.stripe_api.checkout_session_create", side_effect=error):
        response = client.post("/checkout/")

    assert response.status_code == HTTPStatus.FOUND
    order = Order.objects.get()
    assert order.status == Order.Status.FAILED
    assert "Checkout Session not created" in order.problem
    assert available(product) == 4
    assert CartItem.objects.count() == 1


def test_checkout_get_is_not_allowed(client):
    assert client.get("/checkout/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_access_pass_needs_no_stock(stripe_create):
    user = shopper()
    pass_ = ProductFactory(stock=0, with_price__lookup_key="amazin_access_pass")

    started = checkout.checkout_start(
        user=user,
        lines=[checkout.LineRequest(product_id=pass_.pk, quantity=1)],
        kind=Order.Kind.ACCESS,
    )

    assert started.url == f"https://checkout.example/{started.order.pk}"
    assert started.order.kind == Order.Kind.ACCESS
    assert started.order.cart is None
    assert started.order.email == user.email


def test_goods_checkout_refuses_the_access_pass(stripe_create):
    pass_ = ProductFactory(stock=5, with_price__lookup_key="amazin_access_pass")

    with pytest.raises(checkout.CheckoutError):
        checkout.checkout_start(
            user=None, lines=[checkout.LineRequest(product_id=pass_.pk, quantity=1)]
        )

    assert not Order.objects.exists()


def test_expired_reservations_do_not_count(client, stripe_create):
    product = ProductFactory(stock=2)
    fill(client, (product, 2))
    client.post("/checkout/")
    lapsed = timezone.now() - timedelta(seconds=1)
    Order.objects.update(reserved_until=lapsed)
    Reservation.objects.update(expires_at=lapsed)
    other = client.__class__()
    fill(other, (product, 2))

    response = other.post("/checkout/")

    assert response.status_code == HTTPStatus.SEE_OTHER
    assert Order.objects.filter(status=Order.Status.PENDING).count() == 2
    assert available(product) == 0


# One open Checkout per cart, and what one address may hold


def test_a_second_tab_or_a_double_submit_gets_the_same_open_session(
    client, stripe_create, fake_stripe
):
    product = ProductFactory(stock=5)
    fill(client, (product, 2))

    first = client.post("/checkout/")
    second = client.post("/checkout/")

    assert first.status_code == second.status_code == HTTPStatus.SEE_OTHER
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1
    assert fake_stripe.created == 1
    assert available(product) == 3


def test_a_changed_cart_expires_the_old_session_before_opening_another(
    client, stripe_create, fake_stripe
):
    teapot, cups = ProductFactory(stock=5), ProductFactory(stock=5)
    fill(client, (teapot, 1))
    client.post("/checkout/")
    old = Order.objects.get()
    fill(client, (cups, 2))

    response = client.post("/checkout/")

    new = Order.objects.exclude(pk=old.pk).get()
    assert fake_stripe.sessions[old.stripe_session_id]["status"] == "expired"
    assert Order.objects.get(pk=old.pk).status == Order.Status.EXPIRED
    assert response["Location"] == f"https://checkout.example/{new.pk}"
    assert new.status == Order.Status.PENDING
    assert (available(teapot), available(cups)) == (4, 3)


def test_a_session_paid_in_another_tab_sends_this_one_to_the_success_page(
    client, stripe_create, fake_stripe, django_capture_on_commit_callbacks
):
    product = ProductFactory(stock=5)
    fill(client, (product, 2))
    client.post("/checkout/")
    order = Order.objects.get()
    fake_stripe.pay(order.stripe_session_id)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/checkout/")

    assert response["Location"].endswith(f"/checkout/success/?session_id={order.stripe_session_id}")
    assert Order.objects.count() == 1
    assert Order.objects.get().status == Order.Status.PAID
    assert Product.objects.get(pk=product.pk).stock == 3


def test_too_many_checkouts_from_one_address_get_a_429(settings, stripe_create):
    settings.CHECKOUT_STARTS_PER_MINUTE = 2
    product = ProductFactory(stock=50)
    answers = []
    for _ in range(3):
        browser = Client()
        fill(browser, (product, 1))
        answers.append(browser.post("/checkout/"))

    assert [a.status_code for a in answers[:2]] == [HTTPStatus.SEE_OTHER] * 2
    assert answers[2].status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Too many checkouts" in answers[2].content.decode()
    assert Order.objects.count() == 2


def test_one_address_cannot_hold_more_than_its_share(settings, stripe_create):
    settings.CHECKOUT_MAX_UNITS_PER_ADDRESS = 5
    product = ProductFactory(stock=50)
    first, second = Client(), Client()
    fill(first, (product, 4))
    fill(second, (product, 2))

    held = first.post("/checkout/")
    refused = second.post("/checkout/")

    assert held.status_code == HTTPStatus.SEE_OTHER
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "already holds 4 items" in refused.content.decode()
    assert available(product) == 46
