"""`/live/`: committed changes reach open streams; rolled-back ones never do."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import transaction
from django.db.models import F

from live import subscribers
from live.broker import get_broker
from live.registry import CSRF_PLACEHOLDER
from store import live
from store.models import Product
from tests.factories import ProductFactory
from tests.live.sse import SSEClient
from tests.support import stripe_events as stripe
from tests.support.emulator import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def about(pk: int):
    """Predicate: a `cards` event that names this product."""
    return lambda e: (
        e.name == "cards" and (str(pk) in e.json()["html"] or pk in e.json()["removed"])
    )


def rename(webhook, product: Product, name: str, **fields):
    obj = stripe.product(
        product.stripe_id, name=name, default_price=product.default_price_stripe_id, **fields
    )
    response = webhook.post(stripe.event("product.updated", obj))
    assert response.status_code == HTTPStatus.OK


def test_webhook_change_reaches_a_connected_client(live_server, webhook):
    product = ProductFactory(name="Teapot")

    with SSEClient(f"{live_server.url}/live/") as stream:
        assert stream.status == HTTPStatus.OK
        assert stream.content_type.startswith("text/event-stream")
        rename(webhook, product, "Blue teapot")
        event = stream.wait_for(about(product.pk))

    card = event.json()["html"][str(product.pk)]
    assert f'id="product-{product.pk}"' in card and "Blue teapot" in card
    assert 'class="stock' in card
    # A fragment shared by every viewer carries nobody's CSRF token.
    assert CSRF_PLACEHOLDER not in card
    assert 'name="csrfmiddlewaretoken" value=""' in card


def test_sold_out_reaches_the_client_with_a_disabled_button(live_server):
    product = ProductFactory(stock=1)

    with SSEClient(f"{live_server.url}/live/") as stream:
        with transaction.atomic():
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - 1)
            live.publish_on_commit([product.pk])
        card = stream.wait_for(about(product.pk)).json()["html"][str(product.pk)]

    assert 'data-available="0"' in card
    assert "Sold out" in card and "disabled" in card


def test_archived_product_is_removed_and_a_new_one_inserted(live_server, webhook):
    old = ProductFactory(name="B old")
    with SSEClient(f"{live_server.url}/live/") as stream:
        rename(webhook, old, "B old", active=False)
        gone = stream.wait_for(about(old.pk)).json()

        new = ProductFactory(name="A new")
        live.publish([new.pk])
        added = stream.wait_for(about(new.pk)).json()

    assert gone["removed"] == [old.pk] and gone["html"] == {}
    assert str(new.pk) in added["html"]
    assert added["order"] == [new.pk]


def test_a_rolled_back_change_is_never_sent(live_server):
    rolled_back, committed = ProductFactory(), ProductFactory()

    with SSEClient(f"{live_server.url}/live/") as stream:
        with pytest.raises(RuntimeError), transaction.atomic():
            Product.objects.filter(pk=rolled_back.pk).update(stock=0)
            live.publish_on_commit([rolled_back.pk])
            raise RuntimeError("payment failed")
        with transaction.atomic():
            Product.objects.filter(pk=committed.pk).update(stock=3)
            live.publish_on_commit([committed.pk])
        # Messages arrive in order: the first one must be the committed change alone.
        first = stream.wait_for(lambda e: e.name == "cards")

    assert list(first.json()["html"]) == [str(committed.pk)]
    assert first.json()["removed"] == []


def test_a_reconnecting_client_gets_what_it_missed(live_server):
    seen, missed = ProductFactory(), ProductFactory()
    with SSEClient(f"{live_server.url}/live/") as stream:
        live.publish([seen.pk])
        last_id = stream.wait_for(about(seen.pk)).id
    assert last_id

    broker = get_broker()  # live_server runs in this process: so does its broker
    seq_before = broker.seq
    with transaction.atomic():
        Product.objects.filter(pk=missed.pk).update(stock=4)
        live.publish_on_commit([missed.pk])
    wait_until(lambda: broker.seq > seq_before, message="the broker never saw the change")
    with SSEClient(f"{live_server.url}/live/", last_event_id=last_id) as stream:
        event = stream.wait_for(lambda e: e.name in ("cards", "reset"))

    assert event.name == "cards"
    assert list(event.json()["html"]) == [str(missed.pk)]
    assert 'data-available="4"' in event.json()["html"][str(missed.pk)]


def test_an_unknown_last_event_id_gets_a_fresh_state(live_server):
    a, b = ProductFactory(name="A"), ProductFactory(name="B")
    hidden = ProductFactory(active=False)

    with SSEClient(f"{live_server.url}/live/", last_event_id="0000dead:7") as stream:
        event = stream.wait_for(lambda e: e.name in ("cards", "reset"))

    assert event.name == "reset"
    assert event.json()["order"] == [a.pk, b.pk]
    assert set(event.json()["html"]) == {str(a.pk), str(b.pk)}
    assert str(hidden.pk) not in event.json()["html"]


def test_a_slow_viewer_is_reset_instead_of_blocking_others():
    sub = subscribers.SyncSubscriber()

    for n in range(subscribers.QUEUE_SIZE + 5):
        sub.offer(f"message {n}".encode())

    queued = []
    while not sub.queue.empty():
        queued.append(sub.queue.get_nowait())
    # The backlog was dropped for one fresh state; only what came after it is kept.
    assert queued[0] is subscribers.RESET
    assert queued[1:] == [f"message {n}".encode() for n in range(subscribers.QUEUE_SIZE + 1, 37)]


def test_grid_page_forms_carry_the_request_csrf_token(client):
    ProductFactory.create_batch(2)

    html = client.get("/").content.decode()

    assert CSRF_PLACEHOLDER not in html
    assert html.count('name="csrfmiddlewaretoken" value="') == 2
    assert 'name="csrfmiddlewaretoken" value=""' not in html
    assert 'data-live-src="/live/"' in html and "js/live.js" in html


def test_a_change_in_one_process_reaches_a_client_of_another(asgi_server, webhook):
    """As the background worker's changes reach the web server's viewers: through
    LISTEN/NOTIFY on PostgreSQL, through the live.Change log on SQLite."""
    product = ProductFactory(name="Kettle", stock=7)

    with SSEClient(f"{asgi_server}/live/") as stream:
        assert stream.status == HTTPStatus.OK
        rename(webhook, product, "Copper kettle")  # in this (test) process
        event = stream.wait_for(about(product.pk))

    card = event.json()["html"][str(product.pk)]
    assert "Copper kettle" in card and 'data-available="7"' in card


@pytest.mark.postgres
def test_the_production_app_serves_pages_and_the_stream_on_one_port(asgi_server):
    import urllib.request

    ProductFactory(name="Teapot")

    with urllib.request.urlopen(f"{asgi_server}/") as response:
        html = response.read().decode()

    assert response.status == HTTPStatus.OK
    assert "Teapot" in html and 'data-live-src="/live/"' in html
