from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cart.models import Cart, CartItem
from tests.factories import (
    CartFactory,
    CartItemFactory,
    ProductFactory,
    ReservationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def items(client: Client) -> dict[int, int]:
    cart_id = client.session.get("cart_id")
    if cart_id is None:
        return {}  # no cart yet, so no items
    return dict(CartItem.objects.filter(cart_id=cart_id).values_list("product_id", "quantity"))


def shopper():
    user = UserFactory()
    user.set_password("correct horse battery")
    user.save()
    return user


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_add_creates_the_session_cart_and_redirects_to_it(client):
    product = ProductFactory(stock=5)

    response = client.post("/cart/add/", {"product": product.pk, "quantity": 2})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/cart/"
    assert items(client) == {product.pk: 2}


def test_adding_twice_adds_up(client):
    product = ProductFactory(stock=5)
    client.post("/cart/add/", {"product": product.pk, "quantity": 2})

    client.post("/cart/add/", {"product": product.pk, "quantity": 3})

    assert items(client) == {product.pk: 5}


def test_cart_page_shows_lines_total_and_checkout(client):
    teapot = ProductFactory(name="Teapot", stock=5, with_price__unit_amount=2500)
    cups = ProductFactory(name="Cups", stock=5, with_price__unit_amount=400)
    client.post("/cart/add/", {"product": teapot.pk, "quantity": 2})
    client.post("/cart/add/", {"product": cups.pk, "quantity": 3})

    response = client.get("/cart/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Teapot" in html and "Cups" in html
    assert "$25.00" in html and "$50.00" in html and "$12.00" in html
    assert 'data-testid="cart-total">$62.00<' in html
    assert 'data-testid="checkout"' in html
    assert teapot.image in html
    assert '<span id="cart-count" class="rounded-full bg-white/20 px-2 text-xs">5</span>' in html


def test_empty_cart_says_so_and_links_to_the_shop(client):
    response = client.get("/cart/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Your cart is empty" in html
    assert 'href="/"' in html
    assert 'data-testid="checkout"' not in html


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "at least 1"),
        ("-1", "at least 1"),
        ("1.5", "whole number"),
        ("abc", "whole number"),
        (str(10**9), "at most 99"),
        ("", "Enter a quantity"),
        ("100", "at most 99"),
    ],
)
def test_bad_quantities_are_refused_with_a_message_and_cart_unchanged(client, quantity, message):
    product = ProductFactory(stock=10**6)
    client.post("/cart/add/", {"product": product.pk, "quantity": 1})

    response = client.post("/cart/add/", {"product": product.pk, "quantity": quantity})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert any(message in m for m in messages_of(response))
    assert items(client) == {product.pk: 1}


def _archived():
    return ProductFactory(active=False).pk


def _unpriced():
    return ProductFactory(with_price=False).pk


def _inactive_price():
    product = ProductFactory()
    product.price.active = False
    product.price.save()
    return product.pk


@pytest.mark.parametrize(
    "make_product",
    [
        pytest.param(lambda: 999999, id="unknown"),
        pytest.param(lambda: "abc", id="not-a-number"),
        pytest.param(lambda: "", id="missing"),
        pytest.param(lambda: str(10**30), id="huge"),
        pytest.param(_archived, id="archived"),
        pytest.param(_unpriced, id="unpriced"),
        pytest.param(_inactive_price, id="price-archived"),
    ],
)
def test_products_not_for_sale_are_refused(client, make_product):
    product_id = make_product()

    response = client.post("/cart/add/", {"product": product_id, "quantity": 1})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert messages_of(response)
    assert not CartItem.objects.exists()


def test_more_than_available_is_a_conflict(client):
    product = ProductFactory(name="Kettle", stock=3)
    client.post("/cart/add/", {"product": product.pk, "quantity": 2})

    response = client.post("/cart/add/", {"product": product.pk, "quantity": 2})

    assert response.status_code == HTTPStatus.CONFLICT
    assert "Only 3 of Kettle available." in messages_of(response)
    assert items(client) == {product.pk: 2}


def test_reserved_units_are_not_available(client):
    product = ProductFactory(name="Kettle", stock=3)
    ReservationFactory(product=product, quantity=3)

    response = client.post("/cart/add/", {"product": product.pk, "quantity": 1})

    assert response.status_code == HTTPStatus.CONFLICT
    assert messages_of(response) == ["Kettle is sold out."]
    assert not CartItem.objects.exists()


def test_missing_csrf_token_is_forbidden():
    client = Client(enforce_csrf_checks=True)
    product = ProductFactory()

    response = client.post("/cart/add/", {"product": product.pk, "quantity": 1})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not CartItem.objects.exists()


def test_get_on_add_is_not_allowed(client):
    assert client.get("/cart/add/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_update_sets_the_quantity(client):
    product = ProductFactory(stock=10)
    client.post("/cart/add/", {"product": product.pk, "quantity": 1})

    response = client.post("/cart/update/", {"product": product.pk, "quantity": 7})

    assert response.status_code == HTTPStatus.FOUND
    assert items(client) == {product.pk: 7}


@pytest.mark.parametrize(
    ("quantity", "status"),
    [
        ("0", HTTPStatus.BAD_REQUEST),
        ("-1", HTTPStatus.BAD_REQUEST),
        ("2.5", HTTPStatus.BAD_REQUEST),
        ("x", HTTPStatus.BAD_REQUEST),
        (str(10**9), HTTPStatus.BAD_REQUEST),
        ("11", HTTPStatus.CONFLICT),
    ],
)
def test_bad_updates_leave_the_cart_alone(client, quantity, status):
    product = ProductFactory(stock=10)
    client.post("/cart/add/", {"product": product.pk, "quantity": 4})

    response = client.post("/cart/update/", {"product": product.pk, "quantity": quantity})

    assert response.status_code == status
    assert messages_of(response)
    assert items(client) == {product.pk: 4}


def test_update_of_a_product_not_in_the_cart_is_refused(client):
    in_cart, other = ProductFactory(), ProductFactory()
    client.post("/cart/add/", {"product": in_cart.pk, "quantity": 1})

    response = client.post("/cart/update/", {"product": other.pk, "quantity": 2})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert items(client) == {in_cart.pk: 1}


def test_remove_deletes_the_line(client):
    keep, drop = ProductFactory(), ProductFactory()
    client.post("/cart/add/", {"product": keep.pk, "quantity": 1})
    client.post("/cart/add/", {"product": drop.pk, "quantity": 1})

    response = client.post("/cart/remove/", {"product": drop.pk})

    assert response.status_code == HTTPStatus.FOUND
    assert items(client) == {keep.pk: 1}


@pytest.mark.parametrize("product", ["", "abc", "-3", "999999"])
def test_remove_of_nonsense_is_a_bad_request(client, product):
    kept = ProductFactory()
    client.post("/cart/add/", {"product": kept.pk, "quantity": 1})

    response = client.post("/cart/remove/", {"product": product})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert items(client) == {kept.pk: 1}


def test_a_product_archived_after_adding_can_still_be_removed_but_blocks_checkout(client):
    product = ProductFactory(name="Gone")
    client.post("/cart/add/", {"product": product.pk, "quantity": 1})
    product.active = False
    product.save()

    page = client.get("/cart/").content.decode()
    response = client.post("/cart/remove/", {"product": product.pk})

    assert "No longer for sale" in page
    assert 'data-testid="checkout" disabled' in page
    assert response.status_code == HTTPStatus.FOUND
    assert items(client) == {}


def test_htmx_add_answers_with_messages_and_an_out_of_band_count(client):
    product = ProductFactory(name="Teapot", stock=5)

    response = client.post(
        "/cart/add/", {"product": product.pk, "quantity": 2}, headers={"HX-Request": "true"}
    )

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert 'id="messages"' in html
    assert "Added Teapot to your cart." in html
    assert '<span id="cart-count" hx-swap-oob="true"' in html
    assert ">2</span>" in html


def test_htmx_add_refused_carries_the_message(client):
    product = ProductFactory(name="Teapot", stock=1)

    response = client.post(
        "/cart/add/", {"product": product.pk, "quantity": 2}, headers={"HX-Request": "true"}
    )

    assert response.status_code == HTTPStatus.CONFLICT
    assert "Only 1 of Teapot available." in response.content.decode()
    assert not CartItem.objects.exists()


def test_grid_add_form_posts_with_htmx_and_plain_form(client):
    ProductFactory()

    html = client.get("/").content.decode()

    assert 'action="/cart/add/"' in html
    assert 'hx-post="/cart/add/"' in html


def test_header_count_on_every_page(client):
    product = ProductFactory(stock=9)
    client.post("/cart/add/", {"product": product.pk, "quantity": 3})

    html = client.get(f"/products/{product.pk}/").content.decode()

    assert '<span id="cart-count" class="rounded-full bg-white/20 px-2 text-xs">3</span>' in html


def test_cart_page_query_count_does_not_grow_with_lines(client, django_assert_num_queries):
    products = ProductFactory.create_batch(6, stock=5)
    client.post("/cart/add/", {"product": products[0].pk, "quantity": 1})
    # The session, the header's cart count (one query), the cart, its items, their products.
    with django_assert_num_queries(5):
        client.get("/cart/")
    for product in products[1:]:
        client.post("/cart/add/", {"product": product.pk, "quantity": 1})

    with django_assert_num_queries(5):
        response = client.get("/cart/")

    assert response.status_code == HTTPStatus.OK
    assert response.content.decode().count("data-product=") == 6


def test_login_merges_the_session_cart_into_the_users(client):
    user = shopper()
    both, only_session = ProductFactory(stock=5), ProductFactory(stock=5)
    user_cart = CartFactory(user=user, session_key=None)
    CartItemFactory(cart=user_cart, product=both, quantity=4)
    client.post("/cart/add/", {"product": both.pk, "quantity": 3})
    client.post("/cart/add/", {"product": only_session.pk, "quantity": 2})

    response = client.post(
        "/accounts/login/", {"username": user.username, "password": "correct horse battery"}
    )

    assert response.status_code == HTTPStatus.FOUND
    merged = dict(user_cart.items.values_list("product_id", "quantity"))
    assert merged == {both.pk: 5, only_session.pk: 2}  # 4 + 3 capped at the 5 in stock
    assert Cart.objects.count() == 1
    assert '<span id="cart-count" class="rounded-full bg-white/20 px-2 text-xs">7</span>' in (
        client.get("/cart/").content.decode()
    )


def test_login_without_a_user_cart_takes_the_session_cart_over(client):
    user = shopper()
    product = ProductFactory()
    client.post("/cart/add/", {"product": product.pk, "quantity": 2})

    client.post(
        "/accounts/login/", {"username": user.username, "password": "correct horse battery"}
    )

    cart = Cart.objects.get()
    assert cart.user == user
    assert dict(cart.items.values_list("product_id", "quantity")) == {product.pk: 2}


def test_logged_in_user_adds_to_their_own_cart(client):
    user = get_user_model().objects.create_user("u@example.com", "u@example.com", "pw")
    client.force_login(user)
    product = ProductFactory()

    client.post("/cart/add/", {"product": product.pk, "quantity": 1})

    assert Cart.objects.get(user=user).items.get().quantity == 1


def test_mixed_currency_cart_is_shown(client):
    usd = ProductFactory(with_price__currency="usd")
    eur = ProductFactory(with_price__currency="eur")
    client.post("/cart/add/", {"product": usd.pk, "quantity": 1})

    response = client.post("/cart/add/", {"product": eur.pk, "quantity": 1})

    page = client.get("/cart/").content.decode()
    assert response.status_code == HTTPStatus.FOUND
    assert items(client) == {usd.pk: 1, eur.pk: 1}
    assert "different currencies" in page
    assert 'data-testid="checkout" disabled' in page
