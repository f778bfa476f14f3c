"""When the channel fails or falls behind, nobody trusts what it may have missed: the
listeners hear that anything may have changed, and every viewer starts afresh."""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

import pytest

from live import channel, registry, subscribers
from live.broker import Broker
from live.models import Change


class Behind(channel.InProcess):
    """An in-process channel that reports, once `trouble` is set, that it lost changes."""

    def __init__(self) -> None:
        super().__init__()
        self.trouble = threading.Event()

    def take(self, timeout: float) -> channel.Changes:
        return super().take(min(timeout, 0.05))

    def listen(self, **kwargs: Any) -> None:
        idle = kwargs["on_idle"]

        def on_idle() -> None:
            if self.trouble.is_set():
                self.trouble.clear()
                kwargs["on_lost"]()
            idle()

        super().listen(**(kwargs | {"on_idle": on_idle}))


class Broken(channel.InProcess):
    """An in-process channel that loses its connection once `trouble` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.trouble = threading.Event()

    def take(self, timeout: float) -> channel.Changes:
        if self.trouble.is_set():
            self.trouble.clear()
            raise RuntimeError("connection lost")
        return super().take(min(timeout, 0.05))


@pytest.fixture
def told(monkeypatch) -> list[tuple[Collection[int] | None, str]]:
    heard: list[tuple[Collection[int] | None, str]] = []
    monkeypatch.setattr(registry, "_listeners", [lambda ids, topic: heard.append((ids, topic))])
    return heard


@pytest.mark.parametrize("kind", [Behind, Broken])
def test_changes_the_channel_may_have_missed_reset_listeners_and_viewers(told, kind):
    broker = Broker()
    broker.channel = channel_ = kind()
    try:
        sub = broker.subscribe_sync()
        channel_.trouble.set()

        assert sub.queue.get(timeout=10) is subscribers.RESET
        assert (None, "cards") in told  # anything may have changed
    finally:
        broker.stop()


@pytest.mark.django_db
def test_a_listener_that_fell_behind_the_trimmed_log_says_so(monkeypatch):
    monkeypatch.setattr(channel, "close_old_connections", lambda: None)  # the test's own
    log = channel.SQLiteLog()
    first, second, third = (Change.objects.create(ids=str(i), origin=-1) for i in range(3))
    seen: channel.Changes = {}
    assert log._read_others(first.pk, seen) == (third.pk, False) and seen == {"cards": {1, 2}}

    second.delete()  # deleted unread, but among the newest: not the trim's doing
    assert log._read_others(first.pk, {}) == (third.pk, False)
    log.KEEP_ROWS = 2  # now the trim could have taken it

    assert log._read_others(first.pk, {}) == (third.pk, True)
