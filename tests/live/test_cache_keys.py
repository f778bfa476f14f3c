"""What a cached value depends on: a `CacheKey` names its topics and cards and survives
every other change; a plain key lasts until the next card change (or one of unknown ids).
The stream's grid order is read again only after a change under the topic its source
names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from live import channel, registry
from live.broker import Broker, CacheKey


@pytest.fixture
def broker(settings) -> Iterator[Broker]:
    settings.LIVE_GRID_CACHE = True
    broker = Broker()
    broker.channel = channel.InProcess()  # no database: nothing here queries
    yield broker
    broker.stop()


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A source of fragments 1-9 whose order names the `listing` topic; records each
    `order()` read."""
    reads: list[str] = []

    def order() -> list[int]:
        reads.append("order")
        return list(range(1, 10))

    monkeypatch.setattr(
        registry,
        "_source",
        registry.Source(
            render=lambda ids: {pk: f"<li>{pk}</li>" for pk in ids},
            order=order,
            page=lambda: registry.Page([], {}),
            order_topic="listing",
        ),
    )
    return reads


class Builds:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> tuple[int, None]:
        self.count += 1
        return self.count, None


def test_a_cache_key_survives_changes_it_does_not_name(broker, source):
    build = Builds()
    key = CacheKey("page", topics=("listing",), cards=(1, 2))
    broker.cached(key, build)

    broker.invalidate([3])  # another card
    broker.invalidate([1], "carts")  # the same id under another topic
    value = broker.cached(key, build)

    assert (value, build.count) == (1, 1)


@pytest.mark.parametrize(("ids", "topic"), [([2], "cards"), ([77], "listing"), (None, "cards")])
def test_a_cache_key_is_built_again_after_a_change_it_names(broker, source, ids, topic):
    build = Builds()
    key = CacheKey("page", topics=("listing",), cards=(1, 2))
    broker.cached(key, build)

    broker.invalidate(ids, topic)
    first = broker.cached(key, build)
    again = broker.cached(key, build)

    assert (first, again, build.count) == (2, 2, 2)


def test_a_plain_key_is_built_again_after_any_card_change(broker, source):
    build = Builds()
    broker.cached("page", build)

    broker.invalidate([3], "listing")
    broker.invalidate([3], "carts")
    assert broker.cached("page", build) == 1
    broker.invalidate([3])

    assert broker.cached("page", build) == 2


def test_a_listing_change_published_before_its_cards_still_counts(broker, source):
    """As store publishes a catalog change: `listing`, then `cards`, for the same ids."""
    build = Builds()
    key = CacheKey("ids", topics=("listing",))
    broker.cached(key, build)

    broker.invalidate([4], "listing")
    broker.invalidate([4])

    assert broker.cached(key, build) == 2


def test_the_stream_reads_the_order_again_only_after_a_listing_change(broker, source):
    sub = broker.subscribe_sync()

    messages = []
    for pk in (1, 2, 3):
        if pk == 3:
            broker.invalidate([3], "listing")  # as `publish` does in the publishing process
        broker.send([pk])
        messages.append(sub.queue.get(timeout=10))  # one at a time: none coalesced

    assert all(b'"order":[1,2,3' in m for m in messages)
    assert source == ["order", "order"]


def test_without_the_cache_every_message_reads_the_order(broker, source, settings):
    settings.LIVE_GRID_CACHE = False
    sub = broker.subscribe_sync()

    for pk in (1, 2):
        broker.send([pk])
        sub.queue.get(timeout=10)

    assert source == ["order", "order"]


def test_a_catch_up_for_a_page_that_names_its_ids_sends_only_those(broker, source):
    last = broker.last_id
    broker.dispatch([1])
    broker.dispatch([5])

    message = broker.catch_up(last, [5, 6]).decode()

    assert '"5":"<li>5</li>"' in message and '"1"' not in message
    assert broker.catch_up(broker.last_id, [5, 6]) == b""
