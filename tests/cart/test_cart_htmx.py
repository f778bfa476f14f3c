"""Which requests get the htmx fragment: django-htmx's `request.htmx`, read by cart/views.py."""

from http import HTTPStatus

import pytest

from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"HX-Request": "true"}, True),
        ({"HX-Request": "false"}, False),
        ({"HX-Request": ""}, False),
        ({}, False),
    ],
)
def test_only_a_true_hx_request_header_gets_the_fragment(client, headers, fragment):
    product = ProductFactory(stock=5)

    response = client.post("/cart/add/", {"product": product.pk, "quantity": 1}, headers=headers)

    if fragment:
        assert response.status_code == HTTPStatus.OK
        assert 'id="messages"' in response.content.decode()
    else:
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"] == "/cart/"
