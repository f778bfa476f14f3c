"""The shared page cache (LIVE_GRID_CACHE): one render for every anonymous visitor, the
visitor's own token and cart count spliced in, and a change re-rendering one card."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from live.broker import get_broker
from pagecache.cache import forget_all
from store import live, reservations, services, views
from store.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cached(settings):
    settings.LIVE_GRID_CACHE = True
    forget_all()  # nothing cached by an earlier test


def add_to_cart(client, product, quantity=1):
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/cart/add/",
        {"product": product.pk, "quantity": quantity, "csrfmiddlewaretoken": token},
    )
    assert response.status_code in {HTTPStatus.OK, HTTPStatus.FOUND, HTTPStatus.SEE_OTHER}


def test_returning_shopper_gets_the_cached_page_with_their_count_and_token(client, cached):
    mug, cup = ProductFactory(name="Mug", stock=9), ProductFactory(name="Cup", stock=9)
    client.get("/")
    add_to_cart(client, mug, 2)
    add_to_cart(client, cup)
    client.get("/")  # the page is cached now

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert '<span id="cart-count" class="rounded-full bg-white/20 px-2 text-xs">3</span>' in html
    token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert len(token) == 64 and html.count(token) >= 3  # the header and both cards
    assert "CARTCOUNT" not in html and "LIVECSRF" not in html
    # The session and its cart count in one query; no product, no render of the cards.
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_a_stranger_and_a_shopper_share_the_page_but_not_the_count(client, cached, django_app=None):
    mug = ProductFactory(name="Mug", stock=9)
    client.get("/")
    add_to_cart(client, mug)

    from django.test import Client

    stranger = Client().get("/").content.decode()
    shopper = client.get("/").content.decode()

    assert 'text-xs">0</span>' in stranger and 'text-xs">1</span>' in shopper


def test_a_change_renders_that_card_only_and_once(client, cached, monkeypatch):
    products = ProductFactory.create_batch(5, stock=3)
    client.get("/")
    rendered: list[int] = []
    real = live.render_card
    monkeypatch.setattr(live, "render_card", lambda p: rendered.append(p.pk) or real(p))
    changed = products[2]
    type(changed).objects.filter(pk=changed.pk).update(stock=1)
    viewer = get_broker().subscribe_sync()

    live.publish([changed.pk])
    message = viewer.queue.get(timeout=10)  # the stream's render is done
    html = client.get("/").content.decode()

    get_broker().unsubscribe(viewer)
    assert b"Only 1 left" in message
    assert "Only 1 left" in html
    assert rendered == [changed.pk]  # for the stream; the page reused it


def test_a_logged_in_shopper_gets_a_full_render_with_the_same_cards(
    client, cached, django_user_model
):
    ProductFactory(name="Mug")
    user = django_user_model.objects.create_user("u@example.com", "u@example.com", "pw-Secret-1")
    client.force_login(user)

    html = client.get("/").content.decode()

    assert "u@example.com" in html and "Mug" in html and "LIVECSRF" not in html


def test_a_strangers_token_from_the_cached_page_is_accepted(cached):
    from django.middleware.csrf import _unmask_cipher_token
    from django.test import Client

    mug = ProductFactory(name="Mug", stock=9)
    stranger = Client(enforce_csrf_checks=True)
    stranger.get("/")  # fills the cache
    stranger.cookies.clear()

    html = stranger.get("/").content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    secret = stranger.cookies["csrftoken"].value
    response = stranger.post(
        "/cart/add/", {"product": mug.pk, "quantity": 1, "csrfmiddlewaretoken": token}
    )

    assert _unmask_cipher_token(token) == secret and len(secret) == 32
    assert response.status_code != HTTPStatus.FORBIDDEN
    assert stranger.get("/").content.decode().count(token) == 0  # a new mask every time


def spy(monkeypatch, module, name):
    """Record each call of `module.name` (its first argument, or its product's pk)."""
    calls: list = []
    real = getattr(module, name)

    def recording(*args, **kwargs):
        first = args[0] if args else None
        calls.append(getattr(first, "pk", first))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


def test_a_stock_change_keeps_the_cached_id_list_and_renders_one_card(client, cached, monkeypatch):
    products = ProductFactory.create_batch(5, stock=3)
    client.get("/")
    id_reads = spy(monkeypatch, views, "_page_ids")
    rendered = spy(monkeypatch, live, "render_card")
    changed = products[2]
    viewer = get_broker().subscribe_sync()

    with transaction.atomic():  # as a sale or the admin changes stock
        Product.objects.filter(pk=changed.pk).update(stock=1)
        live.publish_on_commit([changed.pk])
    message = viewer.queue.get(timeout=10)
    html = client.get("/").content.decode()

    get_broker().unsubscribe(viewer)
    assert b"Only 1 left" in message and "Only 1 left" in html
    assert rendered == [changed.pk]
    assert id_reads == []  # stock never changes what the grid lists


def test_a_rename_from_stripe_reads_the_list_again(client, cached, monkeypatch):
    ProductFactory(name="Apple")
    pear = ProductFactory(name="Pear")
    before = client.get("/").content.decode()  # cached
    assert before.index("Apple") < before.index("Pear")
    id_reads = spy(monkeypatch, views, "_page_ids")
    obj = {
        "id": pear.stripe_id,
        "object": "product",
        "name": "Aardvark pear",
        "active": True,
        "default_price": pear.price.stripe_id,
    }

    applied = services.product_upsert_from_stripe(obj=obj, event_created=100)
    html = client.get("/").content.decode()

    assert applied == services.Applied.UPDATED
    assert len(id_reads) == 1
    assert html.index("Aardvark pear") < html.index("Apple")


def test_a_reservation_ending_by_the_clock_renders_that_card_only(client, cached, monkeypatch):
    products = ProductFactory.create_batch(4, stock=1)
    held = products[1]
    viewer = get_broker().subscribe_sync()
    reservations.reservation_create(
        holder="test", quantities={held.pk: 1}, expires_at=timezone.now() + timedelta(seconds=2)
    )
    viewer.queue.get(timeout=10)  # the reservation's own message
    assert "Sold out" in client.get("/").content.decode()  # cached with the hold
    id_reads = spy(monkeypatch, views, "_page_ids")
    rendered = spy(monkeypatch, live, "render_card")

    message = viewer.queue.get(timeout=10)  # nothing committed: the dispatcher's clock
    html = client.get("/").content.decode()

    get_broker().unsubscribe(viewer)
    assert b"Only 1 left" in message and "Sold out" not in html
    assert rendered == [held.pk]
    assert id_reads == []


def test_the_stream_reads_the_grid_order_again_only_after_a_listing_change(cached, monkeypatch):
    products = ProductFactory.create_batch(3, stock=3)
    order_reads = spy(monkeypatch, live, "order")
    viewer = get_broker().subscribe_sync()

    messages = []
    for product in products:  # one at a time: none coalesced
        live.publish_on_commit([product.pk], listing=product == products[2])
        messages.append(viewer.queue.get(timeout=10))

    get_broker().unsubscribe(viewer)
    order = ",".join(str(p.pk) for p in sorted(products, key=lambda p: (p.name, p.pk)))
    assert all(f'"order":[{order}]'.encode() in m for m in messages)
    assert len(order_reads) == 2  # the first message, and after the listing change


def test_without_the_cache_every_message_reads_the_grid_order(monkeypatch):
    products = ProductFactory.create_batch(2, stock=3)
    order_reads = spy(monkeypatch, live, "order")
    viewer = get_broker().subscribe_sync()

    for product in products:
        live.publish([product.pk])
        viewer.queue.get(timeout=10)

    get_broker().unsubscribe(viewer)
    assert len(order_reads) == 2
