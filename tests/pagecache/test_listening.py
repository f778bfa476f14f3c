"""Copies are only as fresh as the channel: nothing is kept while this process's broker
does not listen, nor kept from before, and changes it could not read drop every copy."""

from __future__ import annotations

import threading
from typing import Any

from live import channel
from pagecache.cache import pages
from pagecache.changes import Depends
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


class Behind(channel.InProcess):
    """An in-process channel that reports, on demand, that it lost changes."""

    def __init__(self) -> None:
        super().__init__()
        self.lose = threading.Event()

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


def test_nothing_is_kept_while_the_channel_reconnects_nor_kept_from_before(broker, build):
    flaky = broker.channel = Flaky()
    every = Depends()
    assert pages.cached("page", build, every) == 1 and pages.cached("page", build, every) == 1
    try:
        flaky.mended.clear()
        flaky.broken.set()
        wait_until(lambda: not broker.listening(), timeout=5)

        assert pages.cached("page", build, every) == 2  # built, not kept: changes may be missed
        assert pages.cached("page", build, every) == 3
        assert pages.get("page") is None
    finally:
        flaky.mended.set()
    wait_until(broker.listening, timeout=5)

    assert pages.cached("page", build, every) == 4
    assert pages.cached("page", build, every) == 4


def test_changes_the_channel_could_not_read_drop_every_copy(broker, build):
    behind = broker.channel = Behind()
    assert pages.cached("ids", build, Depends()) == 1 and pages.cached("ids", build, Depends()) == 1

    behind.lose.set()
    wait_until(lambda: not behind.lose.is_set(), timeout=5)

    assert pages.cached("ids", build, Depends()) == 2
