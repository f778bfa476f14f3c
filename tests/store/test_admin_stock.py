"""Staff set stock where they can see it, and find what needs restocking."""

from http import HTTPStatus

import pytest

from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_stock_is_the_second_column_and_editable(admin_client):
    ProductFactory(name="Teapot", stock=7, with_price__unit_amount=24500)

    response = admin_client.get("/admin/store/product/")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    headers = response.context["cl"].list_display
    assert list(headers[:2]) == ["name", "stock"]  # no bulk action: no checkbox column
    assert 'name="form-0-stock"' in html
    assert "$245.00" in html and ">24500<" not in html


def test_low_stock_filter(admin_client, settings):
    settings.LOW_STOCK_THRESHOLD = 3
    ProductFactory(name="Plenty", stock=10)
    ProductFactory(name="Few", stock=3)
    ProductFactory(name="None left", stock=0)

    low = admin_client.get("/admin/store/product/?low_stock=low")
    out = admin_client.get("/admin/store/product/?low_stock=out")

    assert sorted(p.name for p in low.context["cl"].result_list) == ["Few", "None left"]
    assert [p.name for p in out.context["cl"].result_list] == ["None left"]


def test_products_are_archived_in_stripe_not_deleted_here(admin_client):
    product = ProductFactory(name="Teapot")

    page = admin_client.get(f"/admin/store/product/{product.pk}/delete/")
    listing = admin_client.get("/admin/store/product/")

    assert page.status_code == HTTPStatus.FORBIDDEN
    assert "delete_selected" not in listing.content.decode()
