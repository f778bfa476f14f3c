"""The `/live/` stream for one viewer, as Server-Sent Events: the same protocol for a
thread (`stream_sync`, WSGI) and an event loop (`stream_async`, ASGI).

A stream opens with `retry:` (the reconnect delay), then what the viewer missed since the
id it sent back (`Last-Event-ID` or `?last=`), then every message as the broker fans it
out, with a comment line as heartbeat when nothing happens. When the server shuts down it
sends a short, jittered `retry:` and ends, so browsers reconnect to a healthy worker, not
all in the same millisecond.
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django.db import close_old_connections, connections

from live.subscribers import RESET, STOP, AsyncSubscriber

if TYPE_CHECKING:
    from live.broker import Broker

HEARTBEAT_SECONDS = 15.0
HEARTBEAT = b": keep-alive\n\n"
RETRY_MS = 2000
SHUTDOWN_RETRY_MS = 500  # plus up to as much again, at random
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
CONTENT_TYPE = "text/event-stream"

T = TypeVar("T")


def encode(event: str, data: dict[str, Any], event_id: str = "") -> bytes:
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def retry(ms: int) -> bytes:
    return f"retry: {ms}\n\n".encode()


def shutdown_hint() -> bytes:
    return retry(SHUTDOWN_RETRY_MS + secrets.randbelow(SHUTDOWN_RETRY_MS + 1))


def stream_sync(broker: Broker, last_id: str, ids: list[int] | None = None) -> Iterator[bytes]:
    """One viewer on one thread (`make run`'s runserver, tests)."""
    sub = broker.subscribe_sync()
    try:
        yield retry(RETRY_MS)
        backlog = broker.catch_up(last_id, ids)
        if backlog:
            yield backlog
        connections.close_all()  # this thread holds no connection while it waits
        while True:
            try:
                message = sub.queue.get(timeout=HEARTBEAT_SECONDS)
            except queue.Empty:
                yield HEARTBEAT
                continue
            if message is STOP:
                yield shutdown_hint()
                return
            if message is RESET:
                yield broker.reset_message(ids)
                connections.close_all()
            else:
                yield message
    finally:
        broker.unsubscribe(sub)


async def stream_async(
    broker: Broker, last_id: str, ids: list[int] | None = None
) -> AsyncGenerator[bytes, None]:
    """One viewer on an event loop (`make serve`): a queue and a task, no thread.

    The server ends it by cancelling the task that iterates it (the viewer went away).
    Heartbeats come from the loop's one `Heartbeat`, through the same queue.
    """
    if not broker.running:
        await asyncio.to_thread(broker.start)
    loop = asyncio.get_running_loop()
    sub = broker.subscribe_async(loop)
    heartbeat = Heartbeat.on(loop)
    heartbeat.viewers.add(sub)
    try:
        yield retry(RETRY_MS)
        if last_id:
            backlog = await asyncio.to_thread(_in_thread, broker.catch_up, last_id, ids)
            if backlog:
                yield backlog
        while True:
            message = await sub.queue.get()
            if message is STOP:
                yield shutdown_hint()
                return
            if message is RESET:
                message = await asyncio.to_thread(_in_thread, broker.reset_message, ids)
            yield message
    finally:
        heartbeat.leave(sub)
        broker.unsubscribe(sub)


class Heartbeat:
    """One timer per event loop that queues a heartbeat for each of its idle viewers every
    HEARTBEAT_SECONDS; it ends with the loop's last viewer.

    Not a timeout on each viewer's wait: in Python 3.11 `wait_for` makes a task and a timer
    per message per viewer, and with 5,000 viewers on a loop that (and the garbage
    collections those objects set off) made a fan-out cost 2 to 3 times the CPU (bench/README.md).
    """

    loops: ClassVar[dict[asyncio.AbstractEventLoop, Heartbeat]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.viewers: set[AsyncSubscriber] = set()
        self.task = loop.create_task(self.run())

    @classmethod
    def on(cls, loop: asyncio.AbstractEventLoop) -> Heartbeat:
        """This loop's heartbeat (call on the loop's thread)."""
        heartbeat = cls.loops.get(loop)
        if heartbeat is None:
            heartbeat = cls.loops[loop] = cls(loop)
        return heartbeat

    def leave(self, sub: AsyncSubscriber) -> None:
        self.viewers.discard(sub)
        if not self.viewers and self.loops.get(self.loop) is self:
            del self.loops[self.loop]
            self.task.cancel()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for sub in self.viewers:
                if sub.queue.empty():  # one that has a message waiting is not idle
                    sub.queue.put_nowait(HEARTBEAT)


def _in_thread(work: Callable[..., T], *args: Any) -> T:
    try:
        return work(*args)
    finally:
        close_old_connections()
