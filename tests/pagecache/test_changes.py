"""Every change live hears of reaches the page caches as a stamp, per topic and id."""

from __future__ import annotations

import queue

import pytest

from live import channel
from live.broker import Broker
from live.publish import publish
from pagecache import changes as changes_module
from pagecache.changes import Changes, changes
from tests.support.emulator import wait_until


def test_a_change_is_remembered_per_topic_and_id():
    seen = Changes()
    before = seen.stamp

    seen.note([5], "carts")

    assert seen.changed_at("carts", 5) > before
    assert seen.changed_at("carts", 6) <= before  # another id of the topic: untouched
    assert seen.changed_at("cards", 5) <= before  # the same id of another topic: too
    assert seen.topic_changed_at("carts") > before and seen.topic_changed_at("cards") <= before


def test_a_change_of_unknown_ids_is_a_change_of_everything():
    seen = Changes()
    before = seen.stamp

    seen.note(None, "cards")

    assert seen.changed_at("carts", 5) > before and seen.topic_changed_at("listing") > before


def test_a_topic_that_tracks_too_many_ids_forgets_them_all_at_once(monkeypatch):
    monkeypatch.setattr(changes_module, "TRACKED_IDS", 3)
    seen = Changes()
    seen.note([1, 2, 3], "carts")
    stamp = seen.changed_at("carts", 1)

    seen.note([4], "carts")

    assert seen.changed_at("carts", 99) > stamp  # unknown now: treated as changed


def test_a_publish_reaches_this_process_at_once(broker):
    before = changes.changed_at("carts", 3)

    publish([3], "carts")  # no dispatcher has read it yet: told before it is sent

    assert changes.changed_at("carts", 3) > before


@pytest.mark.django_db(transaction=True)
def test_a_change_from_another_process_reaches_this_ones_caches():
    broker = Broker()  # the database's channel: NOTIFY, or the SQLite change log
    broker.start()
    try:
        before = changes.changed_at("carts", 12)
        other = channel.for_database()
        if isinstance(other, channel.SQLiteLog):
            other.origin = -1  # as if written by another process's publisher
            other.inbox = queue.Queue()  # ... whose own queue this process never reads
        other.send([12], "carts")

        wait_until(lambda: changes.changed_at("carts", 12) > before, timeout=10)
    finally:
        broker.stop()
