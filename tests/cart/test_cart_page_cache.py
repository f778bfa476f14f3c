"""The cart page served like the grid (LIVE_GRID_CACHE): rendered once per cart, kept while
the cart, its products and their reservations stay as they were; the visitor's token,
count and account part spliced in."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.utils import timezone

from store import live
from store.models import Price, Product
from store.reservations import reservation_create
from tests.factories import ProductFactory
from tests.support.emulator import wait_until
from tests.support.pages import COUNT, cache_on, settle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cached(settings):
    cache_on(settings)


def post(client: Client, url: str, **data) -> None:
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    response = client.post(url, data)
    assert response.status_code in {HTTPStatus.FOUND, HTTPStatus.SEE_OTHER}, response
    client.get("/cart/")  # shows (and so clears) the flash message: a full render


def cart_page(client: Client) -> str:
    response = client.get("/cart/")
    assert response.status_code == HTTPStatus.OK
    return response.content.decode()


@pytest.fixture
def shopper(client, cached):
    mug = ProductFactory(name="Mug", stock=9)
    cup = ProductFactory(name="Cup", stock=9, with_price__unit_amount=250)
    client.get("/")
    post(client, "/cart/add/", product=mug.pk, quantity=2)
    post(client, "/cart/add/", product=cup.pk, quantity=1)
    settle()
    client.get("/cart/")  # the memo and the cart's page are warm
    client.products = (mug, cup)
    return client


def test_a_warm_cart_page_costs_no_query_and_splices_the_visitor_in(
    shopper, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = shopper.get("/cart/")

    html = response.content.decode()
    assert COUNT.search(html).group(1) == "3"
    assert html.count('data-testid="cart-line"') == 2 and "$32.50" in html
    token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert len(token) == 64 and html.count(token) >= 8  # the header's and every form's
    assert "LIVECSRF" not in html and "CARTCOUNT" not in html
    assert "Cookie" in response.headers["Vary"]


def test_two_carts_never_share_a_page(shopper, cached):
    other = Client()
    other.get("/")
    empty = cart_page(other)
    mine = cart_page(shopper)

    assert 'data-testid="empty-cart"' in empty and "Mug" not in empty
    assert "Mug" in mine and COUNT.search(empty).group(1) == "0"


def test_the_page_follows_the_cart(shopper):
    mug, cup = shopper.products
    before = cart_page(shopper)

    post(shopper, "/cart/update/", product=mug.pk, quantity=4)
    updated = cart_page(shopper)
    post(shopper, "/cart/remove/", product=cup.pk)
    removed = cart_page(shopper)

    assert "$32.50" in before and "$62.50" in updated
    assert "Cup" not in removed and "$60.00" in removed and COUNT.search(removed).group(1) == "4"


def test_the_page_follows_a_price_and_the_stock(shopper):
    mug, _ = shopper.products
    cart_page(shopper)

    Price.objects.filter(pk=mug.price.pk).update(unit_amount=2000)
    live.publish([mug.pk])  # as the catalog's services do on commit
    repriced = cart_page(shopper)
    Product.objects.filter(pk=mug.pk).update(stock=1)
    live.publish([mug.pk])
    short = cart_page(shopper)

    assert "$20.00 each" in repriced and "$42.50" in repriced
    assert "Only 1 available now." in short


def test_the_page_changes_when_a_reservation_of_its_product_ends(shopper):
    mug, _ = shopper.products
    reservation_create(
        holder="test:other",
        quantities={mug.pk: 8},
        expires_at=timezone.now() + timedelta(seconds=1),
    )
    held = cart_page(shopper)

    wait_until(lambda: "available now" not in cart_page(shopper), timeout=10)

    assert "Only 1 available now." in held


def test_a_logged_in_user_gets_the_cached_cart_with_their_header(
    cached, django_user_model, django_assert_num_queries
):
    mug = ProductFactory(name="Mug", stock=9)
    user = django_user_model.objects.create_user("kim@example.com", "kim@example.com", "pw-1-x")
    client = Client()
    client.force_login(user)
    client.get("/")
    post(client, "/cart/add/", product=mug.pk, quantity=2)
    settle()
    client.get("/cart/")  # warm: the memo and this cart's page

    with django_assert_num_queries(0):
        html = client.get("/cart/").content.decode()

    assert 'data-testid="current-user">kim@example.com<' in html
    assert "Mug" in html and COUNT.search(html).group(1) == "2"


def test_a_flash_message_is_shown_on_a_full_render(shopper):
    mug, _ = shopper.products
    token = shopper.cookies["csrftoken"].value
    shopper.post("/cart/add/", {"product": mug.pk, "quantity": 1, "csrfmiddlewaretoken": token})

    html = cart_page(shopper)

    assert "Added Mug to your cart." in html and COUNT.search(html).group(1) == "4"
    assert "Added Mug" not in cart_page(shopper)
