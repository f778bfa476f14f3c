"""How a change leaves this process: `publish(ids, topic)` after commit.

`publish` tells this process's listeners at once (`live.registry.listen`: the page caches
drop their copies before the next request reads them) and sends the ids on the channel
(`live.channel`) to every process, this one included, whose broker renders and streams
them (`live.broker`). `publish_on_commit` does it once the transaction commits, never for
one rolled back. Within `publishes_coalesced` (the queue worker), the publishes of a burst
leave together, one message per topic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connection, transaction

from live import channel, registry
from live.broker import Broker, get_broker

logger = logging.getLogger(__name__)

CARDS = channel.CARDS
CLOSE_TIMEOUT = 5.0  # seconds `Coalescer.close` waits for its thread


def publish(ids: Iterable[int], topic: str = CARDS) -> None:
    """Tell every process that these ids changed (this process's listeners at once).

    A failure here is logged, never raised: the change is committed already, and viewers
    catch up on their next reconnect. Within `publishes_coalesced` (the queue worker),
    the message leaves with the others of its burst.
    """
    ids = channel.normalise(ids)
    if not ids:
        return
    logger.debug("live: changed %s %s", topic, ids)
    registry.changed(ids, topic)
    if _coalescer is not None:
        _coalescer.add(ids, topic)
        return
    _send(get_broker(), ids, topic)


def _send(broker: Broker, ids: list[int], topic: str) -> None:
    try:
        broker.send(ids, topic)
    except Exception:
        logger.exception("live: could not publish %s %s", topic, ids)


class Coalescer:
    """Publishes held for up to `seconds` and sent together, one message per topic: a
    worker applying a burst of webhooks announces each product once per burst, so every
    process renders its card once per burst, not once per event."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._pending: dict[str, set[int]] = {}
        self._wake = threading.Event()  # set exactly while something is pending, or closing
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-coalescer", daemon=True)
        self._thread.start()

    def add(self, ids: list[int], topic: str) -> None:
        with self._lock:
            self._pending.setdefault(topic, set()).update(ids)
            self._wake.set()

    def flush(self) -> None:
        """Send what is held: other topics first, so a process that renders the cards
        already knows what else changed."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if not self._closing.is_set():
                self._wake.clear()
        broker = get_broker()
        for topic in sorted(pending, key=lambda t: t == CARDS):
            _send(broker, sorted(pending[topic]), topic)

    def close(self) -> None:
        """Send what is held and stop."""
        with self._lock:
            self._closing.set()
            self._wake.set()
        self._thread.join(timeout=CLOSE_TIMEOUT)
        self.flush()

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                if self._closing.is_set():
                    return
                self._closing.wait(self.seconds)  # the window: what else changes joins it
                self.flush()
                close_old_connections()  # this thread's own connection, kept between bursts
        finally:
            connection.close()


_coalescer: Coalescer | None = None


@contextmanager
def publishes_coalesced(seconds: float) -> Iterator[None]:
    """Within this block, this process sends its publishes in bursts of `seconds` (the
    queue worker does: its changes come in bursts, and nobody views its process); what is
    held is sent when the block ends."""
    global _coalescer
    if _coalescer is not None:  # already coalescing
        yield
        return
    coalescer = _coalescer = Coalescer(seconds)
    try:
        yield
    finally:
        _coalescer = None
        coalescer.close()


def publishes_flush() -> None:
    """Send what `publishes_coalesced` holds, now: the queue worker calls it when its queue
    runs dry, so a lone change leaves at once and only a burst waits for the window."""
    if _coalescer is not None:
        _coalescer.flush()


def publish_on_commit(ids: Iterable[int], topic: str = CARDS) -> None:
    """`publish` once the current transaction commits; never for one rolled back."""
    ids = list(ids)
    if ids:
        transaction.on_commit(lambda: publish(ids, topic))
