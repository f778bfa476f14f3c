from http import HTTPStatus
from unittest import mock

import pytest
from django.db import connection
from django.db.utils import OperationalError
from django.test.utils import CaptureQueriesContext

from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_grid_shows_products_with_price_and_stock(client):
    ProductFactory(name="Teapot", stock=12, with_price__unit_amount=2500)
    ProductFactory(name="Mug", stock=2)
    ProductFactory(name="Kettle", stock=0)

    response = client.get("/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Teapot" in html and "$25.00" in html
    assert "12 in stock" in html
    assert "Only 2 left" in html
    assert "Sold out" in html


def test_grid_hides_archived_unpriced_and_inactive_price(client):
    ProductFactory(name="Archived", active=False)
    ProductFactory(name="Unpriced", with_price=False)
    ProductFactory(name="Old price", with_price__active=False)
    ProductFactory(name="Visible")

    html = client.get("/").content.decode()

    assert "Visible" in html
    assert "Archived" not in html and "Unpriced" not in html and "Old price" not in html


def test_grid_hides_the_access_pass(client):
    ProductFactory(name="Members pass", with_price__lookup_key="amazin_access_pass")

    html = client.get("/").content.decode()

    assert "Members pass" not in html


def test_empty_catalog_has_an_empty_state(client):
    response = client.get("/")

    assert response.status_code == HTTPStatus.OK
    assert b"Nothing for sale yet" in response.content


@pytest.mark.parametrize("count", [3, 300])
def test_grid_query_count_does_not_grow_with_the_catalog(client, count):
    ProductFactory.create_batch(count)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")

    assert response.status_code == HTTPStatus.OK
    assert response.content.count(b'data-product="') == min(count, 48)  # one page
    # The page's ids, its cards (with price and live reservations), the category list;
    # nothing per product, whatever the catalog's size.
    assert len(queries) == 3, [q["sql"] for q in queries]


def test_product_page(client):
    product = ProductFactory(name="Teapot", description="Holds tea.")

    response = client.get(f"/products/{product.pk}/")

    assert response.status_code == HTTPStatus.OK
    assert b"Holds tea." in response.content


@pytest.mark.parametrize("make", [lambda: 999999, lambda: ProductFactory.create(active=False).pk])
def test_product_page_404_for_unknown_or_archived(client, make):
    response = client.get(f"/products/{make()}/")

    assert response.status_code == HTTPStatus.NOT_FOUND


def test_healthz_ok(client):
    response = client.get("/healthz")

    assert response.status_code == HTTPStatus.OK


def test_healthz_503_when_database_unreachable(client):
    with mock.patch(
        "django.db.backends.utils.CursorWrapper.execute", side_effect=OperationalError("down")
    ):
        response = client.get("/healthz")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("http://localhost:8000/static/img/products/teapot.svg", "/static/img/products/teapot.svg"),
        ("http://127.0.0.1:8001/static/img/products/teapot.svg", "/static/img/products/teapot.svg"),
        ("https://cdn.example.com/static/teapot.png", "https://cdn.example.com/static/teapot.png"),
        ("https://cdn.example.com/teapot.png", "https://cdn.example.com/teapot.png"),
    ],
)
def test_the_shops_own_images_work_on_any_port(client, stored, shown):
    product = ProductFactory(images=[stored])

    response = client.get(f"/products/{product.pk}/")

    assert f'src="{shown}"' in response.content.decode()
