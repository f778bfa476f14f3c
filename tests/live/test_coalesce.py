"""A process that coalesces its publishes (the queue worker) sends a burst of changes as
one message per topic: every web process then renders each changed card once per burst."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from live import broker as live_broker
from live import channel, registry
from live.broker import Broker
from live.publish import publish, publishes_coalesced
from tests.support.emulator import wait_until


class Recording(channel.InProcess):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, list[int]]] = []

    def send(self, ids: list[int], topic: str = channel.CARDS) -> None:
        self.sent.append((topic, list(ids)))


@pytest.fixture
def recording(monkeypatch) -> Iterator[Recording]:
    broker = Broker()
    broker.channel = Recording()
    monkeypatch.setattr(live_broker, "_broker", broker)
    monkeypatch.setattr(live_broker, "_broker_pid", os.getpid())
    yield broker.channel
    broker.stop()


def test_a_burst_leaves_as_one_message_per_topic_other_topics_first(recording, monkeypatch):
    told: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(registry, "_listeners", [lambda ids, topic: told.append((topic, ids))])
    with publishes_coalesced(60):  # a window longer than the test: the end sends it
        publish([3], "listing")
        publish([3])
        publish([1, 2])
        publish([3])
        held = list(recording.sent)
        assert ("cards", [1, 2]) in told  # this process's listeners know at once

    assert held == []
    assert recording.sent == [("listing", [3]), ("cards", [1, 2, 3])]


def test_what_is_held_leaves_once_the_window_passes(recording):
    with publishes_coalesced(0.01):
        publish([5])

        wait_until(lambda: recording.sent == [("cards", [5])], timeout=10)
        publish([6])
        wait_until(lambda: recording.sent == [("cards", [5]), ("cards", [6])], timeout=10)


def test_outside_the_block_publishes_leave_at_once(recording):
    with publishes_coalesced(60):
        pass

    publish([7])

    assert recording.sent == [("cards", [7])]
