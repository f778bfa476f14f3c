"""The header memo (`store.visitors`): a warm returning visitor or logged-in user costs no
query on the cached pages, each with their own header (tests/cart/test_header_count.py:
the count after every change)."""

from http import HTTPStatus

import pytest
from django.test import Client

from store import visitors
from tests.factories import ProductFactory
from tests.support.pages import COUNT, cache_on, count_on, returning_shopper, settle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cached(settings):
    cache_on(settings)


@pytest.fixture
def shopper(client, cached):
    return returning_shopper(client)


def test_a_warm_returning_shopper_costs_no_query(shopper, django_assert_num_queries):
    mug, _ = shopper.cups

    with django_assert_num_queries(0):
        grid = shopper.get("/")
    with django_assert_num_queries(0):
        detail = shopper.get(f"/products/{mug.pk}/")

    for response in (grid, detail):
        assert response.status_code == HTTPStatus.OK
        assert COUNT.search(response.content.decode()).group(1) == "3"
        assert "Cookie" in response.headers["Vary"]  # it differs per cookie
        assert "sessionid" not in response.cookies  # the session was neither saved nor dropped


def test_a_cold_memo_costs_the_one_query_of_session_and_count(shopper, django_assert_num_queries):
    visitors.memo.clear()

    with django_assert_num_queries(1):
        assert count_on(shopper) == 3


def test_a_logged_in_user_gets_the_cached_page_with_their_own_header(
    cached, django_user_model, django_assert_num_queries
):
    ProductFactory(name="Mug", stock=9)
    clients = {}
    for name in ("ann", "bob"):
        user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw-1-x")
        clients[name] = Client()
        clients[name].force_login(user)
        clients[name].get("/")  # warm: the memo and the shared page
    visitors.memo.clear()
    settle()
    for client in clients.values():
        client.get("/")  # warm again, one user after the other in the same process

    with django_assert_num_queries(0):
        pages = {name: client.get("/").content.decode() for name, client in clients.items()}

    for name, other in (("ann", "bob"), ("bob", "ann")):
        html = pages[name]
        assert f'data-testid="current-user">{name}@example.com<' in html
        assert f"{other}@example.com" not in html
        assert 'data-testid="orders-link"' in html and "LIVE" not in html and "ACCOUNT" not in html
        token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        assert html.count(token) >= 2  # the logout form's token is the page's own


def test_a_user_with_a_flash_message_gets_a_full_render(cached, django_user_model):
    mug = ProductFactory(name="Mug", stock=9)
    user = django_user_model.objects.create_user("kim@example.com", "kim@example.com", "pw-1-x")
    client = Client()
    client.force_login(user)
    client.get("/")
    token = client.cookies["csrftoken"].value
    client.post("/cart/add/", {"product": mug.pk, "quantity": 2, "csrfmiddlewaretoken": token})

    html = client.get("/").content.decode()

    assert "Added Mug to your cart." in html and COUNT.search(html).group(1) == "2"
    assert count_on(client) == 2 and "Added Mug" not in client.get("/").content.decode()


def test_a_session_key_maps_to_a_stable_53_bit_id():
    ids = {visitors.session_topic_id(f"key{n}") for n in range(1000)}

    assert visitors.session_topic_id("abc") == visitors.session_topic_id("abc")
    assert len(ids) == 1000 and all(0 <= i < 2**53 for i in ids)


def test_a_members_pass_granted_or_revoked_shows_on_the_cached_grid(cached, django_user_model):
    from accounts import services as accounts

    ProductFactory(name="Mug", stock=9)
    user = django_user_model.objects.create_user("kim@example.com", "kim@example.com", "pw-1-x")
    client = Client()
    client.force_login(user)
    before = client.get("/").content.decode()

    entitlement = accounts.entitlement_grant(user=user, by=None)
    granted = client.get("/").content.decode()
    accounts.entitlement_revoke(entitlement=entitlement, by=None)
    revoked = client.get("/").content.decode()

    assert 'data-testid="access-purchase"' in before and 'data-testid="access-enter"' not in before
    assert 'data-testid="access-enter"' in granted
    assert 'data-testid="access-purchase"' in revoked
    assert 'data-testid="access-login"' not in before + granted + revoked
