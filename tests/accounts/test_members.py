"""The members' area and buying the pass, with Stripe patched at payments.stripe_api."""

from __future__ import annotations

from http import HTTPStatus
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.models import Entitlement
from payments import stripe_api
from payments.models import Order
from tests.factories import PriceFactory, ProductFactory
from tests.support.orders import paid_session

pytestmark = pytest.mark.django_db

CHECKOUT_URL = "https://checkout.stripe.test/c/pay/cs_test_pass"


@pytest.fixture
def access_product(db):
    return ProductFactory(
        name="Members' pass",
        with_price__lookup_key="amazin_access_pass",
        with_price__unit_amount=900,
        stock=0,  # the pass holds no stock: selling it never depends on this
    )


@pytest.fixture
def member(make_user, make_order):
    user = make_user()
    services.entitlement_grant_for_order(order=make_order(user))
    return user


@pytest.fixture
def stripe_session():
    """Checkout Session creation answered as Stripe would, counting the calls."""
    created = iter(range(1, 1000))

    def create(**kwargs):
        n = next(created)
        return {"id": f"cs_test_pass{n}", "url": f"{CHECKOUT_URL}{n}", "status": "open"}

    with mock.patch.object(stripe_api, "checkout_session_create", side_effect=create) as patched:
        yield patched


def login(client, user):
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")


# --- /dashboard/ ---------------------------------------------------------------------------


def test_anonymous_dashboard_goes_to_login_and_back(client, make_user, member):
    response = client.get("/dashboard/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/login/?next=/dashboard/"

    logged_in = client.post(
        "/accounts/login/",
        {"username": member.email, "password": "correct horse battery", "next": "/dashboard/"},
    )

    assert logged_in["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == HTTPStatus.OK


def test_dashboard_sends_a_user_without_access_home_with_the_purchase_button(client, make_user):
    login(client, make_user())

    response = client.get("/dashboard/", follow=True)

    assert response.redirect_chain == [("/", HTTPStatus.FOUND)]
    html = response.content.decode()
    assert "for pass holders" in html
    assert 'data-testid="access-purchase"' in html
    assert 'action="/dashboard/purchase/"' in html


def test_dashboard_refuses_a_refunded_member(client, make_user, make_order):
    user = make_user()
    order = make_order(user)
    services.entitlement_grant_for_order(order=order)
    services.entitlement_revoke_for_order(order=order)
    login(client, user)

    response = client.get("/dashboard/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"


def test_dashboard_shows_the_members_orders_spend_and_whats_new(client, member, make_order):
    make_order(member, kind="goods", amount=2500, currency="usd")
    make_order(member, kind="goods", amount=1000, currency="eur")
    make_order(member, kind="goods", amount=7777, status="pending")
    ProductFactory(name="Brand new kettle")
    login(client, member)

    response = client.get("/dashboard/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    # The pass ($9.00) plus $25.00; the pending order counts for nothing.
    assert "$34.00" in html and "€10.00" in html
    assert "$77.77" not in html
    assert "Brand new kettle" in html
    assert len(response.context["orders"]) == 3


def test_spent_to_date_counts_what_was_refunded(client, member, make_order):
    make_order(member, kind="goods", amount=2500, status="partially_refunded", amount_refunded=1000)
    make_order(member, kind="goods", amount=4000, status="refunded", amount_refunded=4000)
    login(client, member)

    html = client.get("/dashboard/").content.decode()

    # The pass ($9.00) and what was kept of $25.00 ($15.00); the refunded order not at all.
    spend = html.split('data-testid="spend"')[1].split("</section>")[0]
    assert "$24.00" in spend and "$34.00" not in spend


def test_spent_to_date_is_what_stripe_says_left_the_shopper(client, member, make_order):
    # Refunds that succeeded and disputes lost are back with the shopper; a refund still
    # pending at Stripe (amount_refunding) is not yet.
    make_order(member, kind="goods", amount=3000, amount_disputed=1000)
    make_order(member, kind="goods", amount=2000, amount_refunding=500)
    login(client, member)

    html = client.get("/dashboard/").content.decode()

    # The pass ($9.00), $20.00 kept of $30.00, and $20.00.
    spend = html.split('data-testid="spend"')[1].split("</section>")[0]
    assert "$49.00" in spend


def test_one_member_never_sees_anothers_orders(client, member, make_user, make_order):
    other = make_user()
    services.entitlement_grant_for_order(order=make_order(other, amount=900))
    secret = make_order(other, kind="goods", amount=4321)
    login(client, member)

    response = client.get("/dashboard/")

    html = response.content.decode()
    assert f'data-order="{secret.pk}"' not in html
    assert "$43.21" not in html
    assert {o.user_id for o in response.context["orders"]} == {member.pk}
    assert other.email not in html


@pytest.mark.parametrize("extra", [1, 25])
def test_dashboard_query_count_is_fixed(client, member, make_order, extra):
    for _ in range(extra):
        order = make_order(member, kind="goods")
        order.lines.create(
            product=ProductFactory(),
            stripe_price_id="price_x",
            quantity=2,
            unit_amount=450,
            currency="usd",
        )
    login(client, member)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/dashboard/")

    assert response.status_code == HTTPStatus.OK
    # session, user, entitlement, orders, lines, products, spend, new products, cart count
    assert len(queries) == 9, [q["sql"] for q in queries]


# --- the home page banner -----------------------------------------------------------------


def test_home_offers_login_when_logged_out(client):
    html = client.get("/").content.decode()

    assert 'data-testid="access-login"' in html
    assert 'data-testid="access-purchase"' not in html


def test_home_offers_purchase_without_access(client, make_user):
    login(client, make_user())

    html = client.get("/").content.decode()

    assert 'data-testid="access-purchase"' in html
    assert 'data-testid="access-enter"' not in html


def test_home_offers_enter_with_access(client, member):
    login(client, member)

    html = client.get("/").content.decode()

    assert 'data-testid="access-enter"' in html
    assert 'href="/dashboard/"' in html
    assert 'data-testid="access-purchase"' not in html


# --- POST /dashboard/purchase/ ------------------------------------------------------------


def test_purchase_needs_login_and_comes_back_to_the_pass(client, access_product, stripe_session):
    response = client.post("/dashboard/purchase/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/login/?next=/dashboard/purchase/"
    assert not stripe_session.called


def test_pass_page_shows_the_price_and_the_button(client, make_user, access_product):
    login(client, make_user())

    response = client.get("/dashboard/purchase/")

    assert response.status_code == HTTPStatus.OK
    assert "$9.00" in response.content.decode()
    assert b'data-testid="access-purchase"' in response.content


def test_purchase_starts_checkout_for_the_pass(client, make_user, access_product, stripe_session):
    user = make_user()
    login(client, user)

    response = client.post("/dashboard/purchase/")

    assert response.status_code == HTTPStatus.SEE_OTHER
    assert response["Location"] == f"{CHECKOUT_URL}1"
    order = Order.objects.get()
    assert (order.user, order.kind, order.status) == (user, "access", "pending")
    assert order.stripe_session_id == "cs_test_pass1"
    kwargs = stripe_session.call_args.kwargs
    assert kwargs["line_items"] == [(access_product.price.stripe_id, 1)]
    assert kwargs["customer_email"] == user.email
    assert kwargs["order_id"] == order.pk


def test_an_entitled_user_is_not_charged_again(client, member, access_product, stripe_session):
    login(client, member)

    response = client.post("/dashboard/purchase/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/dashboard/"
    assert not stripe_session.called
    assert not Order.objects.filter(status="pending").exists()


def test_a_pending_open_session_is_reused(client, make_user, access_product, stripe_session):
    login(client, make_user())
    first = client.post("/dashboard/purchase/")

    with mock.patch.object(
        stripe_api,
        "checkout_session_retrieve",
        return_value={"id": "cs_test_pass1", "status": "open", "url": f"{CHECKOUT_URL}1"},
    ) as retrieve:
        second = client.post("/dashboard/purchase/")

    assert second.status_code == HTTPStatus.SEE_OTHER
    assert second["Location"] == first["Location"]
    assert stripe_session.call_count == 1
    assert Order.objects.count() == 1
    retrieve.assert_called_once_with("cs_test_pass1")


def test_an_expired_session_is_not_reused(client, make_user, access_product, stripe_session):
    login(client, make_user())
    client.post("/dashboard/purchase/")

    with mock.patch.object(
        stripe_api,
        "checkout_session_retrieve",
        return_value={"id": "cs_test_pass1", "status": "expired", "url": None},
    ):
        second = client.post("/dashboard/purchase/")

    assert second["Location"] == f"{CHECKOUT_URL}2"
    assert stripe_session.call_count == 2


def test_purchase_without_an_access_price_explains_and_goes_home(client, make_user, stripe_session):
    login(client, make_user())

    response = client.post("/dashboard/purchase/", follow=True)

    assert response.redirect_chain == [("/", HTTPStatus.FOUND)]
    assert "not on sale" in response.content.decode()
    assert not stripe_session.called


def test_purchase_with_an_unknown_access_price_id_explains(
    client, make_user, access_product, stripe_session, settings
):
    settings.ACCESS_PRICE_ID = "price_does_not_exist"
    login(client, make_user())

    response = client.post("/dashboard/purchase/", follow=True)

    assert response.redirect_chain == [("/", HTTPStatus.FOUND)]
    assert "not on sale" in response.content.decode()
    assert not stripe_session.called


def test_purchase_when_stripe_fails_explains_and_goes_home(client, make_user, access_product):
    login(client, make_user())

    with mock.patch.object(
        stripe_api, "checkout_session_create", side_effect=stripe_api.StripeError("down")
    ):
        response = client.post("/dashboard/purchase/", follow=True)

    assert response.redirect_chain == [("/", HTTPStatus.FOUND)]
    assert "could not start the payment" in response.content.decode()
    assert not Entitlement.objects.exists()


# --- success page first, webhook second --------------------------------------------------


def test_success_page_then_webhook_grants_once(
    client, webhook, make_user, access_product, stripe_session
):
    from tests.support import stripe_events

    user = make_user()
    login(client, user)
    client.post("/dashboard/purchase/")
    order = Order.objects.get()
    session = paid_session(
        order,
        customer_email=user.email,
        customer_details={"email": user.email},
        payment_intent="pi_test_pass",
    )

    with mock.patch.object(stripe_api, "checkout_session_retrieve", return_value=session):
        success = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")
        delivered = webhook.post(stripe_events.event("checkout.session.completed", session))

    assert success.status_code == HTTPStatus.OK
    assert delivered.status_code == HTTPStatus.OK
    assert Entitlement.objects.filter(user=user).count() == 1
    assert Entitlement.objects.get().order == order
    assert client.get("/dashboard/").status_code == HTTPStatus.OK


def test_purchase_refuses_an_access_price_that_is_not_the_products_price(
    client, make_user, access_product, stripe_session, settings
):
    other = PriceFactory(product=access_product, unit_amount=100)
    settings.ACCESS_PRICE_ID = other.stripe_id
    login(client, make_user())

    response = client.post("/dashboard/purchase/", follow=True)

    assert response.redirect_chain == [("/", HTTPStatus.FOUND)]
    assert "not on sale" in response.content.decode()
    assert not stripe_session.called
