from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from live import broker as live_broker
from live import channel
from live.broker import Broker
from pagecache.cache import forget_all


@pytest.fixture
def broker(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """Caching on, nothing kept from an earlier test, and this process's broker a fresh one
    on an in-process channel (nothing here needs a database)."""
    settings.LIVE_GRID_CACHE = True
    forget_all()
    broker = Broker()
    broker.channel = channel.InProcess()
    monkeypatch.setattr(live_broker, "_broker", broker)
    monkeypatch.setattr(live_broker, "_broker_pid", os.getpid())
    yield broker
    broker.stop()
    forget_all()


class Builds:
    """A build that counts its calls: its value is the count."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> tuple[int, None]:
        self.count += 1
        return self.count, None


@pytest.fixture
def build() -> Builds:
    return Builds()
