"""Fragments kept one by one: a change re-renders that fragment only, and the stream's
render for a change is the one the pages then read."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

import pytest
from django.utils import timezone

from live import registry
from pagecache import cache
from pagecache.cache import fragments
from pagecache.changes import changes


class Renders:
    """`render_timed` for fragments `<li>id</li>`, recording each call's ids; `stale` ids go
    stale by the clock at once."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.stale: set[int] = set()

    def __call__(self, ids: Collection[int]) -> cache.Rendered:
        self.calls.append(sorted(ids))
        past = timezone.now() - timedelta(seconds=1)
        return {pk: (f"<li>{pk}</li>", past if pk in self.stale else None) for pk in ids}


@pytest.fixture
def renders() -> Renders:
    return Renders()


def test_a_change_re_renders_that_fragment_only(broker, renders):
    fragments([1, 2, 3], renders)

    changes.note([2], "cards")
    changes.note([3], "listing")  # not the fragments' topic
    again = fragments([1, 2, 3], renders)

    assert again == {1: "<li>1</li>", 2: "<li>2</li>", 3: "<li>3</li>"}
    assert renders.calls == [[1, 2, 3], [2]]


def test_a_fragment_is_kept_until_its_time(broker, renders):
    renders.stale = {2}

    fragments([1, 2], renders)
    fragments([1, 2], renders)

    assert renders.calls == [[1, 2], [2]]


def test_nothing_kept_outlives_max_age(broker, renders, monkeypatch):
    fragments([1], renders)
    fragments([1], renders)
    monkeypatch.setattr(cache, "MAX_AGE_SECONDS", 0.0)
    fragments([2], renders)
    fragments([2], renders)

    assert renders.calls == [[1], [2], [2]]


def test_the_stream_and_the_pages_render_a_changed_fragment_once(broker, renders, monkeypatch):
    source = registry.Source(
        render=lambda ids: fragments(list(ids), renders),  # as store registers its cards
        order=lambda: [7],
        page=lambda: registry.Page([], {}),
    )
    monkeypatch.setattr(registry, "_source", source)
    sub = broker.subscribe_sync()

    broker.send([7])
    message = sub.queue.get(timeout=10)
    page = fragments([7], renders)

    assert b"<li>7</li>" in message and page == {7: "<li>7</li>"}
    assert renders.calls == [[7]]
