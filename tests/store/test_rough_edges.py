"""The storefront's rough edges: a product without a picture, one link per card with a
name, the shop's own 404 and a 500 that renders with the database down, a favicon, and the
add-to-cart answer's way to the cart."""

from __future__ import annotations

from http import HTTPStatus
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_a_product_without_a_picture_shows_a_placeholder_and_one_named_link(client):
    bare = ProductFactory(name="Plain spoon", images=[])

    grid = client.get("/").content.decode()
    page = client.get(f"/products/{bare.pk}/").content.decode()

    card = grid.split(f'id="product-{bare.pk}"')[1].split("</li>")[0]
    assert 'data-testid="no-image"' in card and "<img" not in card
    # The picture's link repeats the name's: hidden from keyboards and screen readers.
    picture_link, name_link = card.split("<a ")[1:3]
    assert 'tabindex="-1" aria-hidden="true"' in picture_link
    assert ">Plain spoon</a>" in name_link
    assert 'data-testid="no-image"' in page


def test_unknown_pages_get_the_shops_own_404(client):
    response = client.get("/no/such/page/")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert 'data-testid="not-found"' in html
    assert 'nav aria-label="Main"' in html  # in the shop's layout
    assert 'href="/" class="font-medium' in html and "Back to the shop" in html
    assert client.get("/products/999999/").status_code == HTTPStatus.NOT_FOUND


def test_a_missing_file_served_before_the_middleware_is_a_plain_404():
    from django.test import RequestFactory

    from amazin.errors import page_not_found

    request = RequestFactory().get("/static/img/nothing.svg")  # no session: no middleware ran

    response = page_not_found(request, Exception("missing"))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.content == b"Not found\n"


def test_the_500_page_renders_with_the_database_down():
    client = Client(raise_request_exception=False)
    down = OperationalError("could not connect to server")

    with mock.patch(
        "django.db.backends.base.base.BaseDatabaseWrapper.ensure_connection", side_effect=down
    ):
        response = client.get("/")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert 'data-testid="server-error"' in html
    assert '<a href="/"' in html and "Back to the shop" in html
    assert "/static/css/app.css" in html  # the shop's look, from static files alone


def test_browsers_find_a_favicon_at_the_root(client):
    response = client.get("/favicon.ico")
    icon = client.get(response["Location"])

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].endswith(".ico")
    assert icon.status_code == HTTPStatus.OK
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon"' in client.get("/").content.decode()


def test_the_add_to_cart_answer_links_to_the_cart(client):
    kettle = ProductFactory(name="Kettle", stock=3)
    client.get("/")

    added = client.post(
        "/cart/add/", {"product": kettle.pk, "quantity": 1}, headers={"HX-Request": "true"}
    )
    refused = client.post(
        "/cart/add/", {"product": kettle.pk, "quantity": 9}, headers={"HX-Request": "true"}
    )

    assert added.status_code == HTTPStatus.OK
    assert 'href="/cart/"' in added.content.decode() and "View cart" in added.content.decode()
    assert refused.status_code == HTTPStatus.CONFLICT
    assert "View cart" not in refused.content.decode()
