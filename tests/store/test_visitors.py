"""The header memo (`store.visitors`): a warm returning visitor costs no query, and the
header is never stale once a change is committed here or heard from another process."""

import re
from http import HTTPStatus

import pytest
from django.test import Client

from cart import services
from cart.models import Cart
from live import channel
from live.broker import get_broker
from store import visitors
from tests.factories import ProductFactory
from tests.support.emulator import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

COUNT = re.compile(r'<span id="cart-count"[^>]*>(\d+)</span>')


@pytest.fixture
def cached(settings):
    settings.LIVE_GRID_CACHE = True
    get_broker().invalidate(None)  # nothing cached by an earlier test
    visitors.memo.clear()


def count_on(client: Client, url: str = "/") -> int:
    response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    found = COUNT.search(response.content.decode())
    assert found is not None
    return int(found.group(1))


def post(client: Client, url: str, **data):
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    response = client.post(url, data)
    assert response.status_code in {HTTPStatus.FOUND, HTTPStatus.SEE_OTHER}, response
    client.get("/")  # shows (and so clears) the flash message: a full render
    return response


@pytest.fixture
def shopper(client, cached):
    """A returning shopper with 3 units in the cart and a warm memo."""
    mug, cup = ProductFactory(name="Mug", stock=9), ProductFactory(name="Cup", stock=9)
    client.get("/")
    post(client, "/cart/add/", product=mug.pk, quantity=2)
    post(client, "/cart/add/", product=cup.pk, quantity=1)
    client.get(f"/products/{mug.pk}/")
    client.cups = (mug, cup)
    assert count_on(client) == 3
    return client


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


def test_the_count_follows_add_update_and_remove_in_this_process(shopper):
    mug, cup = shopper.cups

    post(shopper, "/cart/add/", product=cup.pk, quantity=2)
    after_add = count_on(shopper)
    post(shopper, "/cart/update/", product=mug.pk, quantity=5)
    after_update = count_on(shopper)
    post(shopper, "/cart/remove/", product=cup.pk)
    after_remove = count_on(shopper)

    assert (after_add, after_update, after_remove) == (5, 8, 5)


def as_another_process(monkeypatch):
    """Publish as another process would: only through the channel, this process's caches
    hear of it when its dispatcher does."""
    other = channel.for_database()
    if isinstance(other, channel.SQLiteLog):
        other.origin = -1  # written by another process's publisher
        other.inbox = channel.queue.Queue()  # ... whose own queue this process never reads
    monkeypatch.setattr(
        "live.broker.publish", lambda ids, topic="cards": other.send(channel.normalise(ids), topic)
    )


def test_a_cart_change_in_another_process_reaches_the_memo(shopper, monkeypatch):
    mug, _ = shopper.cups
    cart = Cart.objects.get()
    as_another_process(monkeypatch)

    services.cart_set_quantity(cart=cart, product_id=mug.pk, quantity=7)

    wait_until(lambda: count_on(shopper) == 8, timeout=10)


def test_the_worker_emptying_the_cart_after_a_payment_reaches_the_memo(shopper, monkeypatch):
    cart = Cart.objects.get()
    assert count_on(shopper) == 3  # memoised
    as_another_process(monkeypatch)

    services.cart_remove_products(cart_id=cart.pk, product_ids=[p.pk for p in shopper.cups])

    wait_until(lambda: count_on(shopper) == 0, timeout=10)


def test_login_merges_the_cart_and_the_header_follows(shopper, django_user_model):
    mug, _ = shopper.cups
    user = django_user_model.objects.create_user("kim@example.com", "kim@example.com", "pw-1-x")
    services.cart_add(cart=Cart.objects.create(user=user), product_id=mug.pk, quantity=1)

    shopper.force_login(user)  # the session's cart joins the user's
    html = shopper.get("/").content.decode()

    assert COUNT.search(html).group(1) == "4"
    assert 'data-testid="current-user">kim@example.com<' in html
    assert 'data-testid="orders-link"' in html and 'data-testid="login-link"' not in html


def test_logout_leaves_an_empty_header(shopper, django_user_model):
    user = django_user_model.objects.create_user("kim@example.com", "kim@example.com", "pw-1-x")
    shopper.force_login(user)
    assert count_on(shopper) == 3  # memoised, logged in

    shopper.logout()
    html = shopper.get("/").content.decode()

    assert COUNT.search(html).group(1) == "0"
    assert 'data-testid="login-link"' in html and "kim@example.com" not in html


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
