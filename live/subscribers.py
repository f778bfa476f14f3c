"""One bounded queue per viewer: a slow viewer loses its backlog, never holds up the rest.

A viewer whose queue is full (`QUEUE_SIZE` messages behind) gets `RESET` instead of the
backlog, and the stream sends it a fresh copy of every fragment. `STOP` ends a stream: the
viewer went away, or the server is shutting down.
"""

from __future__ import annotations

import asyncio
import queue
from typing import Any

QUEUE_SIZE = 32  # messages a viewer may lag behind before it gets a reset instead
RESET = object()  # queued instead of a backlog the viewer could not keep up with
STOP = object()  # queued to end the stream, whatever the queue held


class SyncSubscriber:
    """A viewer served by a thread (WSGI: `make run`, tests): a bounded `queue.Queue`."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_SIZE)

    def offer(self, message: Any) -> None:  # from any thread
        _offer(self.queue, message, full=queue.Full)


class AsyncSubscriber:
    """A viewer served by an event loop (ASGI): a bounded `asyncio.Queue`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def offer(self, message: Any) -> None:  # on the loop's own thread only
        _offer(self.queue, message, full=asyncio.QueueFull)


def _offer(q: Any, message: Any, *, full: type[Exception]) -> None:
    """Queue `message` for a viewer: STOP jumps the queue; a viewer too slow to keep up
    loses what it had not read and gets RESET (a fresh state) instead."""
    if message is STOP:
        _drain(q)
        q.put_nowait(STOP)
        return
    try:
        q.put_nowait(message)
    except full:
        _drain(q)
        q.put_nowait(RESET)


def offer_all(subs: list[AsyncSubscriber], message: Any) -> None:
    """Called on one loop's thread for all of its viewers: one wake-up per loop."""
    for sub in subs:
        sub.offer(message)


def _drain(q: Any) -> None:
    while True:
        try:
            q.get_nowait()
        except (queue.Empty, asyncio.QueueEmpty):
            return
