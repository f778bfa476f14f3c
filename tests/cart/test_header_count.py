"""The header's cart count from the per-process memo (`cart.selectors.visitor`): right
after every cart write, here or in another process (the queue worker emptying a cart after
a payment), and across login (the cart merged) and logout."""

import pytest

from cart import services
from cart.models import Cart
from live import channel
from tests.support.emulator import wait_until
from tests.support.pages import COUNT, cache_on, count_on, post, returning_shopper

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shopper(client, settings):
    cache_on(settings)
    return returning_shopper(client)


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
        "live.publish.publish", lambda ids, topic="cards": other.send(channel.normalise(ids), topic)
    )


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (lambda cart, mug: services.cart_add(cart=cart, product_id=mug.pk, quantity=2), 5),
        (lambda cart, mug: services.cart_set_quantity(cart=cart, product_id=mug.pk, quantity=7), 8),
        (lambda cart, mug: services.cart_remove(cart=cart, product_id=mug.pk), 1),
    ],
    ids=["add", "set_quantity", "remove"],
)
def test_a_cart_change_in_another_process_reaches_the_memo(shopper, monkeypatch, write, expected):
    mug, _ = shopper.cups
    cart = Cart.objects.get()
    assert count_on(shopper) == 3  # memoised
    as_another_process(monkeypatch)

    write(cart, mug)

    wait_until(lambda: count_on(shopper) == expected, timeout=10)


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
