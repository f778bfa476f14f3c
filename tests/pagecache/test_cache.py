"""One rule for every kept copy: stale after a change to what it names (an id under a
topic, or a whole topic), a change of unknown ids, a change while it was being built, its
own time, or MAX_AGE; and never kept inside a transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from pagecache import cache
from pagecache.cache import Cache, pages
from pagecache.changes import Depends, changes

PAGE = Depends(ids=(("cards", 1), ("cards", 2)), topics=("listing",))
EVERY_CARD = Depends(topics=("cards",))


def test_a_copy_survives_changes_it_does_not_name(broker, build):
    pages.cached("page", build, PAGE)

    changes.note([3], "cards")  # another card
    changes.note([1], "carts")  # the same id under another topic
    value = pages.cached("page", build, PAGE)

    assert (value, build.count) == (1, 1)


@pytest.mark.parametrize(("ids", "topic"), [([2], "cards"), ([77], "listing"), (None, "cards")])
def test_a_copy_is_built_again_after_a_change_it_names(broker, build, ids, topic):
    pages.cached("page", build, PAGE)

    changes.note(ids, topic)
    first = pages.cached("page", build, PAGE)
    again = pages.cached("page", build, PAGE)

    assert (first, again, build.count) == (2, 2, 2)


def test_a_copy_of_every_card_is_built_again_after_any_card_change(broker, build):
    pages.cached("page", build, EVERY_CARD)

    changes.note([3], "listing")
    changes.note([3], "carts")
    assert pages.cached("page", build, EVERY_CARD) == 1
    changes.note([3], "cards")

    assert pages.cached("page", build, EVERY_CARD) == 2


def test_a_listing_change_published_before_its_cards_still_counts(broker, build):
    """As store publishes a catalog change: `listing`, then `cards`, for the same ids."""
    ids = Depends(topics=("listing",))
    pages.cached("ids", build, ids)

    changes.note([4], "listing")
    changes.note([4], "cards")

    assert pages.cached("ids", build, ids) == 2


def test_a_change_while_building_makes_the_copy_stale(broker, build):
    def racing() -> tuple[int, None]:
        changes.note([1], "cards")  # committed after the build read the row
        return build()

    pages.cached("page", racing, PAGE)

    assert pages.cached("page", build, PAGE) == 2


def test_a_copy_is_kept_until_its_time(broker):
    now = timezone.now()
    for key, expires in (("gone", now - timedelta(seconds=1)), ("kept", now + timedelta(hours=1))):
        pages.put(key, key, stamp=changes.stamp, depends=Depends(), expires=expires)

    assert pages.get("gone") is None
    assert pages.get("kept") == "kept"


def test_nothing_kept_outlives_max_age(broker, build, monkeypatch):
    pages.cached("page", build, Depends())
    assert pages.cached("page", build, Depends()) == 1
    monkeypatch.setattr(cache, "MAX_AGE_SECONDS", 0.0)
    pages.cached("other", build, Depends())

    assert pages.cached("other", build, Depends()) == 3


def test_the_least_recently_used_goes_first(broker):
    kept: Cache[str] = Cache(2)
    for key in ("a", "b"):
        kept.put(key, key, stamp=changes.stamp, depends=Depends())

    kept.get("a")
    kept.put("c", "c", stamp=changes.stamp, depends=Depends())

    assert [kept.get(key) for key in ("a", "b", "c")] == ["a", None, "c"]


@pytest.mark.django_db(transaction=True)
def test_nothing_is_kept_or_used_inside_a_transaction(broker, build):
    pages.cached("page", build, Depends())

    with transaction.atomic():
        inside = [pages.cached("page", build, Depends()) for _ in range(2)]
        pages.put("put", "x", stamp=changes.stamp, depends=Depends())
    after = pages.cached("page", build, Depends())

    assert (inside, after) == ([2, 3], 1)
    assert pages.get("put") is None


def test_without_the_setting_nothing_is_kept(broker, build, settings):
    settings.LIVE_GRID_CACHE = False

    values = [pages.cached("page", build, Depends()) for _ in range(2)]

    assert values == [1, 2]
