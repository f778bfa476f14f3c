"""The broker with a source of its own: live renders and times nothing by itself."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Collection, Iterator
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from live import channel, registry, sse, subscribers
from live.broker import Broker
from tests.live.sse import Event


class ClockSource:
    """Fragment 7 changes by the clock at `due`; nothing else ever changes."""

    def __init__(self, due: datetime) -> None:
        self.due = due
        self.asked: list[tuple[datetime, datetime]] = []

    def render(self, ids: Collection[int]) -> dict[int, str]:
        return {pk: f"<li>{pk} at {timezone.now() >= self.due}</li>" for pk in ids if pk == 7}

    def page(self) -> registry.Page:
        return registry.Page(order=[7], html=self.render([7]), expires=self.due)

    def changed_between(self, since: datetime, until: datetime) -> set[int]:
        self.asked.append((since, until))
        return {7} if since < self.due <= until else set()

    def as_source(self) -> registry.Source:
        return registry.Source(
            render=self.render,
            order=lambda: [7],
            page=self.page,
            next_change=lambda: self.due,
            changed_between=self.changed_between,
        )


@pytest.fixture
def clock_source(monkeypatch: pytest.MonkeyPatch) -> ClockSource:
    source = ClockSource(due=timezone.now() + timedelta(seconds=1.5))
    monkeypatch.setattr(registry, "_source", source.as_source())
    return source


@pytest.fixture
def broker() -> Iterator[Broker]:
    broker = Broker()
    broker.channel = channel.InProcess()  # this test needs no database at all
    yield broker
    broker.stop()


def parse(message: bytes) -> Event:
    fields = dict(line.split(": ", 1) for line in message.decode().strip().split("\n"))
    return Event(fields["event"], fields.get("id", ""), fields["data"])


def test_a_change_by_the_clock_is_announced_when_it_is_due(clock_source, broker):
    sub = broker.subscribe_sync()

    message = sub.queue.get(timeout=10)

    event = parse(message)
    assert event.name == "cards"
    assert event.json() == {"html": {"7": "<li>7 at True</li>"}, "removed": [], "order": [7]}
    assert timezone.now() >= clock_source.due
    assert any(since < clock_source.due <= until for since, until in clock_source.asked)


def test_stop_ends_every_stream_and_streams_opened_after(clock_source, broker):
    before = broker.subscribe_sync()

    broker.stop()
    after = broker.subscribe_sync()

    assert before.queue.get(timeout=1) is subscribers.STOP
    assert after.queue.get(timeout=1) is subscribers.STOP
    with pytest.raises(queue.Empty):
        before.queue.get(timeout=0.1)


def test_published_ids_that_left_the_page_are_removed(clock_source, broker):
    sub = broker.subscribe_sync()

    broker.send([7, 9])

    event = parse(sub.queue.get(timeout=10))
    assert event.json()["removed"] == [9]
    assert list(event.json()["html"]) == ["7"]


def test_a_reset_for_a_page_sends_only_what_that_page_shows(clock_source, broker):
    message = broker.reset_message([7, 8])

    event = parse(message)
    assert event.name == "reset"
    assert event.json() == {"html": {"7": "<li>7 at False</li>"}, "removed": [8]}


def test_a_reconnect_the_broker_cannot_replay_resets_only_the_page_ids(clock_source, broker):
    message = broker.catch_up("another-boot:3", [8])

    assert parse(message).json() == {"html": {}, "removed": [8]}


def test_messages_leave_out_the_order_when_the_source_has_too_many_ids(
    clock_source, broker, monkeypatch
):
    monkeypatch.setattr(
        registry,
        "_source",
        clock_source.as_source().__class__(
            render=clock_source.render, order=lambda: None, page=clock_source.page
        ),
    )

    message = broker._cards_message([7], "b:1")

    assert parse(message).json() == {"html": {"7": "<li>7 at False</li>"}, "removed": []}


def test_a_catch_up_for_a_page_that_names_its_ids_sends_only_those(clock_source, broker):
    last = broker.last_id
    broker.dispatch([1])
    broker.dispatch([7])

    event = parse(broker.catch_up(last, [7, 8]))

    assert event.json()["html"] == {"7": "<li>7 at False</li>"}  # 1 changed too: not shown
    assert broker.catch_up(broker.last_id, [7, 8]) == b""


def test_an_idle_async_viewer_gets_heartbeats_from_one_timer_that_ends_with_it(broker, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.05)

    async def watch() -> tuple[list[bytes], sse.Heartbeat, bool]:
        stream = sse.stream_async(broker, "")
        received = [await anext(stream)]
        for _ in range(2):
            received.append(await asyncio.wait_for(anext(stream), 5))
        heartbeat = sse.Heartbeat.loops[asyncio.get_running_loop()]
        await stream.aclose()
        await asyncio.gather(heartbeat.task, return_exceptions=True)
        return received, heartbeat, asyncio.get_running_loop() in sse.Heartbeat.loops

    received, heartbeat, still_there = asyncio.run(watch())

    assert received == [sse.retry(sse.RETRY_MS), sse.HEARTBEAT, sse.HEARTBEAT]
    assert heartbeat.task.cancelled()
    assert not still_there


def test_a_heartbeat_goes_only_to_viewers_with_nothing_waiting(monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.01)

    async def tick() -> tuple[bytes, list[bytes]]:
        loop = asyncio.get_running_loop()
        idle, busy = subscribers.AsyncSubscriber(loop), subscribers.AsyncSubscriber(loop)
        busy.offer(b"event: cards\n\n")
        heartbeat = sse.Heartbeat.on(loop)
        heartbeat.viewers |= {idle, busy}
        first = await asyncio.wait_for(idle.queue.get(), 5)
        waiting = [busy.queue.get_nowait() for _ in range(busy.queue.qsize())]
        heartbeat.leave(idle)
        heartbeat.leave(busy)
        return first, waiting

    first, waiting = asyncio.run(tick())

    assert first == sse.HEARTBEAT
    assert waiting == [b"event: cards\n\n"]
