"""Topics: a change that only caches need to hear of travels like a card change, and is
neither rendered nor streamed."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from live import channel, registry
from live.broker import Broker
from tests.support.emulator import wait_until


def test_a_payload_names_its_topic_and_a_card_change_stays_bare_ids():
    assert channel.encode("cards", [1, 2]) == "1,2"
    assert channel.encode("carts", [3]) == "carts:3"
    changes: channel.Changes = {}
    for payload in ("1,2", "carts:3,x", "carts:4", "junk", "cards:5"):
        channel.add(changes, payload)
    assert changes == {"cards": {1, 2, 5}, "carts": {3, 4}}


@pytest.fixture
def broker() -> Iterator[Broker]:
    broker = Broker()
    broker.channel = channel.InProcess()
    yield broker
    broker.stop()


def test_another_topic_is_remembered_per_id_and_never_streamed(broker, monkeypatch):
    rendered: list[list[int]] = []

    def render(ids):
        rendered.append(sorted(ids))
        return {pk: f"<li>{pk}</li>" for pk in ids}

    source = registry.Source(render=render, order=lambda: None, page=lambda: registry.Page([], {}))
    monkeypatch.setattr(registry, "_source", source)
    sub = broker.subscribe_sync()
    before = broker.changed_at("carts", 5)

    broker.invalidate([5], "carts")  # as `publish` does in the publishing process
    broker.send([5], "carts")
    broker.send([8])  # a card change after it: streamed, so the cart change was handled

    message = sub.queue.get(timeout=10)
    assert b'"8"' in message and b'"5"' not in message
    assert rendered == [[8]]
    assert broker.changed_at("carts", 5) > before
    assert broker.changed_at("carts", 6) <= before  # another id of the topic: untouched
    assert broker.changed_at("cards", 5) <= before  # the same id of another topic: too
    with pytest.raises(queue.Empty):
        sub.queue.get(timeout=0.1)


def test_a_topic_that_tracks_too_many_ids_forgets_them_all_at_once(broker, monkeypatch):
    monkeypatch.setattr("live.broker.TRACKED_IDS", 3)
    broker.invalidate([1, 2, 3], "carts")
    seen = broker.changed_at("carts", 1)

    broker.invalidate([4], "carts")

    assert broker.changed_at("carts", 99) > seen  # unknown now: treated as changed


@pytest.mark.django_db(transaction=True)
def test_a_topic_change_from_another_process_reaches_this_ones_caches():
    broker = Broker()  # the database's channel: NOTIFY, or the SQLite change log
    broker.start()
    try:
        before = broker.changed_at("carts", 12)
        other = channel.for_database()
        if isinstance(other, channel.SQLiteLog):
            other.origin = -1  # as if written by another process's publisher
            other.inbox = queue.Queue()  # ... whose own queue this process never reads
        other.send([12], "carts")

        wait_until(lambda: broker.changed_at("carts", 12) > before, timeout=10)
    finally:
        broker.stop()


def test_another_topic_moves_the_stamp_and_leaves_the_page_caches_alone(broker, settings):
    settings.LIVE_GRID_CACHE = True
    builds: list[int] = []
    page = lambda: broker.cached("page", lambda: (builds.append(1) or len(builds), None))  # noqa: E731
    page()
    version, stamp = broker.version, broker.stamp

    broker.invalidate([7], "carts")

    assert page() == 1  # still the first build
    assert broker.version == version and broker.stamp > stamp
    assert broker.changed_at("carts", 7) > stamp  # a copy stamped before it is stale
    broker.invalidate([7])  # a card: the pages go
    assert page() == 2 and broker.version == broker.stamp
