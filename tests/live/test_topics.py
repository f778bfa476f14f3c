"""Topics: a change that only caches need to hear of travels like a card change, and is
told to the listeners (the page caches), neither rendered nor streamed."""

from __future__ import annotations

import queue
from collections.abc import Collection, Iterator

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


@pytest.fixture
def told(monkeypatch) -> list[tuple[str, list[int] | None]]:
    """What this process's listeners hear (only this recorder listens)."""
    heard: list[tuple[str, list[int] | None]] = []

    def listener(ids: Collection[int] | None, topic: str) -> None:
        heard.append((topic, None if ids is None else sorted(ids)))

    monkeypatch.setattr(registry, "_listeners", [listener])
    return heard


def test_another_topic_is_told_to_listeners_and_never_streamed(broker, told, monkeypatch):
    rendered: list[list[int]] = []

    def render(ids):
        rendered.append(sorted(ids))
        return {pk: f"<li>{pk}</li>" for pk in ids}

    source = registry.Source(render=render, order=lambda: None, page=lambda: registry.Page([], {}))
    monkeypatch.setattr(registry, "_source", source)
    sub = broker.subscribe_sync()

    broker.send([5], "carts")
    broker.send([8])  # a card change after it: streamed, so the cart change was handled

    message = sub.queue.get(timeout=10)
    assert b'"8"' in message and b'"5"' not in message
    assert rendered == [[8]]
    assert told == [("carts", [5]), ("cards", [8])]  # the card before it was rendered
    with pytest.raises(queue.Empty):
        sub.queue.get(timeout=0.1)


@pytest.mark.django_db(transaction=True)
def test_a_topic_change_from_another_process_reaches_this_ones_listeners(told):
    broker = Broker()  # the database's channel: NOTIFY, or the SQLite change log
    broker.start()
    try:
        other = channel.for_database()
        if isinstance(other, channel.SQLiteLog):
            other.origin = -1  # as if written by another process's publisher
            other.inbox = queue.Queue()  # ... whose own queue this process never reads
        other.send([12], "carts")

        wait_until(lambda: ("carts", [12]) in told, timeout=10)
    finally:
        broker.stop()
