"""How changed ids travel from the process that commits to every process with viewers.

On PostgreSQL, `SELECT pg_notify('amazin_live', '1,2,3')` (ids only, chunked well under the
8,000-byte payload limit); every process holds ONE listening connection, in its broker's
dispatcher thread, so a change made in any process or machine reaches them all. On SQLite
the ids go through an in-process queue for the publishing process, and through a short log
table (`live.Change`) that every other process polls: the background worker's changes (a
webhook's, a fulfilment's) reach the web server's viewers and caches.

`listen` blocks in the dispatcher thread: it hands each burst of ids (coalesced) to
`on_ids`, calls `on_idle` when `wait()` seconds pass with nothing, and returns when `stop`
is set.
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


class Channel(Protocol):
    def send(self, ids: list[int]) -> None: ...

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_ids: Callable[[set[int]], None],
        on_idle: Callable[[], None],
    ) -> None: ...


def uses_notify() -> bool:
    return connections["default"].vendor == "postgresql"


def for_database() -> Channel:
    return PostgresNotify() if uses_notify() else SQLiteLog()


class InProcess:
    """SQLite: one process, so a queue is the whole channel."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[list[int]] = queue.Queue()

    def send(self, ids: list[int]) -> None:
        self.inbox.put(list(ids))

    def take(self, timeout: float) -> set[int]:
        """What is queued: waits up to `timeout` for the first ids, then takes the rest
        already there (a burst becomes one message)."""
        ids: set[int] = set()
        with contextlib.suppress(queue.Empty):
            ids.update(self.inbox.get(timeout=timeout))
            while True:
                ids.update(self.inbox.get_nowait())
        return ids

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_ids: Callable[[set[int]], None],
        on_idle: Callable[[], None],
    ) -> None:
        ready.set()
        while not stop.is_set():
            ids = self.take(wait())
            if ids:
                on_ids(ids)
            else:
                on_idle()


class SQLiteLog(InProcess):
    """SQLite: this process's changes through its queue, other processes' through a log.

    Every publish also appends a row to `live.Change`; the dispatcher polls for rows from
    other processes every POLL_SECONDS (a read of an indexed id under WAL: no write lock),
    and the publisher trims rows older than KEEP_ROWS now and then.
    """

    POLL_SECONDS = 0.2
    KEEP_ROWS = 1000

    def __init__(self) -> None:
        super().__init__()
        self.origin = os.getpid()

    def send(self, ids: list[int]) -> None:
        from live.models import Change

        super().send(ids)
        row = Change.objects.create(ids=",".join(map(str, ids)), origin=self.origin)
        if row.pk % 100 == 0:
            Change.objects.filter(pk__lte=row.pk - self.KEEP_ROWS).delete()

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_ids: Callable[[set[int]], None],
        on_idle: Callable[[], None],
    ) -> None:
        seen: int | None = None  # the log's newest row when we first could read it
        with contextlib.suppress(Exception):  # before `ready`: nothing logged after is missed
            seen = self._read_others(None, set())
        ready.set()
        failed_at = 0.0
        while not stop.is_set():
            ids = self.take(min(wait(), self.POLL_SECONDS))
            try:
                seen = self._read_others(seen, ids)
            except Exception as exc:  # the database is away: the next poll tries again
                close_old_connections()
                if time.monotonic() - failed_at > 60:  # say so once a minute, not each poll
                    failed_at = time.monotonic()
                    logger.warning("live: cannot read the change log: %s", exc)
            if ids:
                on_ids(ids)
            else:
                on_idle()

    def _read_others(self, seen: int | None, ids: set[int]) -> int:
        """Add other processes' ids logged after `seen` to `ids`; returns the new `seen`."""
        from live.models import Change

        if seen is None:
            return Change.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        rows = (
            Change.objects.filter(pk__gt=seen)
            .exclude(origin=self.origin)
            .order_by("pk")
            .values_list("pk", "ids")
        )
        for pk, payload in rows:
            seen = pk
            ids.update(parse_ids(payload))
        close_old_connections()
        return seen


class PostgresNotify:
    """PostgreSQL: NOTIFY on the caller's connection (transactional), LISTEN on our own."""

    def send(self, ids: list[int]) -> None:
        with connection.cursor() as cursor:
            for start in range(0, len(ids), NOTIFY_CHUNK):
                payload = ",".join(map(str, ids[start : start + NOTIFY_CHUNK]))
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])

    def listen(
        self,
        *,
        ready: threading.Event,
        stop: threading.Event,
        wait: Callable[[], float],
        on_ids: Callable[[set[int]], None],
        on_idle: Callable[[], None],
    ) -> None:
        import psycopg

        params = connections["default"].get_connection_params()
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            ready.set()
            while not stop.is_set():
                ids: set[int] = set()
                for note in conn.notifies(timeout=wait(), stop_after=1):
                    ids.update(parse_ids(note.payload))
                if not ids:
                    on_idle()
                    continue
                for note in conn.notifies(timeout=COALESCE_SECONDS):
                    ids.update(parse_ids(note.payload))
                on_ids(ids)


def parse_ids(payload: str) -> list[int]:
    return [int(part) for part in payload.split(",") if part.strip().isdigit()]


def normalise(ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in ids})
