"""When the channel fails or falls behind, caches never trust what they may have missed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from live import channel
from live.broker import Broker
from live.models import Change
from tests.support.emulator import wait_until


class Flaky(channel.InProcess):
    """An in-process channel that loses its connection on demand and reconnects only once
    `mended` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = threading.Event()
        self.mended = threading.Event()
        self.mended.set()

    def take(self, timeout: float) -> channel.Changes:
        if self.broken.is_set():
            self.broken.clear()
            raise RuntimeError("connection lost")
        return super().take(min(timeout, 0.05))

    def listen(self, **kwargs: Any) -> None:
        assert self.mended.wait(10)
        super().listen(**kwargs)


@pytest.fixture
def flaky(settings) -> Iterator[tuple[Broker, Flaky]]:
    settings.LIVE_GRID_CACHE = True
    broker = Broker()
    broker.channel = Flaky()
    yield broker, broker.channel
    broker.channel.mended.set()
    broker.stop()


def test_nothing_is_cached_while_the_channel_reconnects_nor_kept_from_before(flaky):
    broker, flaky_channel = flaky
    builds: list[int] = []

    def build() -> tuple[int, None]:
        builds.append(1)
        return len(builds), None

    assert broker.cached("page", build) == 1 and broker.cached("page", build) == 1
    flaky_channel.mended.clear()
    flaky_channel.broken.set()
    wait_until(lambda: not broker.listening(), timeout=5)

    assert broker.cached("page", build) == 2  # built, not kept: changes may be missed now
    assert broker.cached("page", build) == 3
    flaky_channel.mended.set()
    wait_until(broker.listening, timeout=5)

    assert broker.cached("page", build) == 4
    assert broker.cached("page", build) == 4


def test_changes_the_channel_could_not_read_drop_every_cache(settings):
    settings.LIVE_GRID_CACHE = True

    class Behind(channel.InProcess):
        lose = threading.Event()

        def take(self, timeout: float) -> channel.Changes:
            return super().take(min(timeout, 0.05))

        def listen(self, **kwargs: Any) -> None:
            idle = kwargs["on_idle"]

            def on_idle() -> None:
                if self.lose.is_set():
                    self.lose.clear()
                    kwargs["on_lost"]()
                idle()

            super().listen(**(kwargs | {"on_idle": on_idle}))

    broker = Broker()
    broker.channel = Behind()
    try:
        builds: list[int] = []
        build = lambda: (builds.append(1) or len(builds), None)  # noqa: E731
        assert broker.cached("ids", build) == 1 and broker.cached("ids", build) == 1

        Behind.lose.set()
        wait_until(lambda: not Behind.lose.is_set(), timeout=5)

        assert broker.cached("ids", build) == 2
    finally:
        broker.stop()


def test_nothing_cached_outlives_max_age(flaky, monkeypatch):
    broker, _ = flaky
    rendered: list[int] = []

    def render(ids):
        rendered.extend(ids)
        return {pk: (f"<li>{pk}</li>", None) for pk in ids}

    broker.fragments([1], render)
    broker.fragments([1], render)
    monkeypatch.setattr("live.broker.MAX_AGE", timedelta(0))
    broker.fragments([2], render)
    broker.fragments([2], render)

    assert rendered == [1, 2, 2]


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
