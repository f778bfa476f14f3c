"""A sweep of hostile or malformed requests: each gets an answer below 500, signed in or not.

The precise answers (which 4xx, which message, nothing changed) are pinned by each app's
own tests; this guards the property across every public URL at once.
"""

from http import HTTPStatus

import pytest

from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

GETS = [
    "/products/abc/",
    "/products/0/",
    "/orders/999/",
    "/orders/abc/",
    "/checkout/success/?session_id=" + "x" * 5000,
    "/checkout/success/?session_id=cs_%00",
    "/checkout/cancel/?session_id[]=1",
    "/cart/?x=%ff",
    "/dashboard/",
    "/accounts/login/?next=//evil.example",
    "/?page=%C2%B2",  # a digit int() does not read
    "/?q=%00",  # PostgreSQL refuses a NUL in a query
    "/category/kitchen/?q=%00&page=%D9%A1",
]
POSTS = [
    ("/cart/add/", {"product": "1 OR 1=1", "quantity": "1"}),
    ("/cart/add/", {"product": "", "quantity": ""}),
    ("/cart/add/", {"product": "99999999999999999999999", "quantity": "1"}),
    ("/cart/update/", {"product": "1", "quantity": "1e9"}),
    ("/cart/remove/", {"product": "-1"}),
    ("/checkout/", {}),
    ("/checkout/", {"price": "price_chosen_by_the_browser", "amount": "1"}),
    ("/dashboard/purchase/", {}),
    ("/accounts/signup/", {"email": "x" * 500, "password1": "a", "password2": "b"}),
    ("/accounts/login/", {"username": "\x00", "password": "x"}),
]


@pytest.fixture(params=[False, True], ids=["anonymous", "logged-in"])
def visitor(request, client):
    ProductFactory()
    if request.param:
        client.force_login(UserFactory(), backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.mark.parametrize("url", GETS)
def test_malformed_gets_never_500(visitor, url):
    response = visitor.get(url)

    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR


@pytest.mark.parametrize(("url", "data"), POSTS)
def test_malformed_posts_never_500(visitor, url, data):
    response = visitor.post(url, data)

    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR
