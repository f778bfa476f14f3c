"""How changes travel from the process that commits to every process with viewers.

A change is ids under a topic: `cards` (what viewers see: store's product cards, rendered
and streamed) or any other name an app publishes under (`carts`, say: only caches are
told). On PostgreSQL, `SELECT pg_notify('amazin_live', 'carts:1,2,3')` (topic and ids
only, a card change as bare ids, chunked well under the 8,000-byte payload limit); every
process holds ONE listening connection, in its broker's dispatcher thread, so a change
made in any process or machine reaches them all. On SQLite the changes go through an
in-process queue for the publishing process, and through a short log table
(`live.Change`) that every other process polls: the background worker's changes (a
webhook's, a fulfilment's) reach the web server's viewers and caches.

`listen` blocks in the dispatcher thread: it hands each burst of changes (coalesced,
`{topic: ids}`) to `on_changes`, calls `on_idle` when `wait()` seconds pass with nothing,
and returns when `stop` is set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from django.db import close_old_connections, connection, connections

logger = logging.getLogger(__name__)

CHANNEL = "amazin_live"
NOTIFY_CHUNK = 900  # ids per pg_notify: well under PostgreSQL's 8000-byte payload limit
COALESCE_SECONDS = 0.002  # a burst of notifications arriving within this becomes one message
CARDS = "cards"  # the topic viewers see; every other topic only invalidates caches

Changes = dict[str, set[int]]  # topic -> ids


class Channel(Protocol):
    def send(self, ids: list[int], topic: str = CARDS) -> None: ...

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_changes: Callable[[Changes], None],
        on_idle: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None: ...


def uses_notify() -> bool:
    return connections["default"].vendor == "postgresql"


def for_database() -> Channel:
    return PostgresNotify() if uses_notify() else SQLiteLog()


class InProcess:
    """SQLite: one process, so a queue is the whole channel."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[tuple[str, list[int]]] = queue.Queue()

    def send(self, ids: list[int], topic: str = CARDS) -> None:
        self.inbox.put((topic, list(ids)))

    def take(self, timeout: float) -> Changes:
        """What is queued: waits up to `timeout` for the first change, then takes the rest
        already there (a burst becomes one message)."""
        changes: Changes = {}
        with contextlib.suppress(queue.Empty):
            topic, ids = self.inbox.get(timeout=timeout)
            changes.setdefault(topic, set()).update(ids)
            while True:
                topic, ids = self.inbox.get_nowait()
                changes.setdefault(topic, set()).update(ids)
        return changes

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_changes: Callable[[Changes], None],
        on_idle: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        ready.set()
        while not stop.is_set():
            changes = self.take(wait())
            if changes:
                on_changes(changes)
            else:
                on_idle()


class SQLiteLog(InProcess):
    """SQLite: this process's changes through its queue, other processes' through a log.

    Every publish also appends a row to `live.Change`; the dispatcher polls for rows from
    other processes every POLL_SECONDS (a read of an indexed id under WAL: no write lock),
    and the publisher trims rows older than KEEP_ROWS now and then. Row ids have no gaps
    (SQLite's AUTOINCREMENT, one writer at a time), so a dispatcher that fell so far behind
    that rows it never read were trimmed sees a gap, and calls `on_lost`: the broker then
    starts every cache and viewer afresh.
    """

    POLL_SECONDS = 0.2
    KEEP_ROWS = 1000

    def __init__(self) -> None:
        super().__init__()
        self.origin = os.getpid()

    def send(self, ids: list[int], topic: str = CARDS) -> None:
        from live.models import Change

        super().send(ids, topic)
        row = Change.objects.create(ids=encode(topic, ids), origin=self.origin)
        if row.pk % 100 == 0:
            Change.objects.filter(pk__lte=row.pk - self.KEEP_ROWS).delete()

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_changes: Callable[[Changes], None],
        on_idle: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        seen: int | None = None  # the log's newest row when we first could read it
        with contextlib.suppress(Exception):  # before `ready`: nothing logged after is missed
            seen, _ = self._read_others(None, {})
        ready.set()
        failed_at = 0.0
        while not stop.is_set():
            changes = self.take(min(wait(), self.POLL_SECONDS))
            try:
                seen, lost = self._read_others(seen, changes)
                if lost:
                    on_lost()
            except Exception as exc:  # the database is away: the next poll tries again
                with contextlib.suppress(Exception):  # it may fail the same way
                    close_old_connections()
                if time.monotonic() - failed_at > 60:  # say so once a minute, not each poll
                    failed_at = time.monotonic()
                    logger.warning("live: cannot read the change log: %s", exc)
            if changes:
                on_changes(changes)
            else:
                on_idle()

    def _read_others(self, seen: int | None, changes: Changes) -> tuple[int, bool]:
        """Add other processes' changes logged after `seen`; returns the new `seen`, and
        whether rows after `seen` were trimmed before they could be read."""
        from live.models import Change

        if seen is None:
            return Change.objects.order_by("-pk").values_list("pk", flat=True).first() or 0, False
        rows = list(
            Change.objects.filter(pk__gt=seen).order_by("pk").values_list("pk", "origin", "ids")
        )
        close_old_connections()
        # A gap is rows deleted unread; lost only if the trim could have taken them (the
        # newest KEEP_ROWS are never trimmed; a test's flush deletes newer ones).
        lost = bool(
            rows and seen and seen + 1 < rows[0][0] and seen <= rows[-1][0] - self.KEEP_ROWS
        )
        for pk, origin, payload in rows:
            seen = pk
            if origin != self.origin:
                add(changes, payload)
        return seen, lost


class PostgresNotify:
    """PostgreSQL: NOTIFY on the caller's connection (transactional), LISTEN on our own."""

    def send(self, ids: list[int], topic: str = CARDS) -> None:
        with connection.cursor() as cursor:
            for start in range(0, len(ids), NOTIFY_CHUNK):
                payload = encode(topic, ids[start : start + NOTIFY_CHUNK])
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_changes: Callable[[Changes], None],
        on_idle: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        import psycopg

        params = connections["default"].get_connection_params()
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            ready.set()
            while not stop.is_set():
                changes: Changes = {}
                for note in conn.notifies(timeout=wait(), stop_after=1):
                    add(changes, note.payload)
                if not changes:
                    on_idle()
                    continue
                for note in conn.notifies(timeout=COALESCE_SECONDS):
                    add(changes, note.payload)
                on_changes(changes)


def encode(topic: str, ids: Iterable[int]) -> str:
    """`1,2,3` for cards, `topic:1,2,3` for any other topic."""
    text = ",".join(map(str, ids))
    return text if topic == CARDS else f"{topic}:{text}"


def add(changes: Changes, payload: str) -> None:
    """Add one payload's ids to `changes` under its topic (junk ids are dropped)."""
    topic, _, text = payload.rpartition(":")
    ids = parse_ids(text)
    if ids:
        changes.setdefault(topic or CARDS, set()).update(ids)


def parse_ids(payload: str) -> list[int]:
    return [int(part) for part in payload.split(",") if part.strip().isdigit()]


def normalise(ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in ids})
