"""How a waiting worker learns that a task was committed, without looking every half second.

PostgreSQL: a trigger on the task table (migration `payments.0014_worker_leases`) sends
`NOTIFY amazin_tasks` whenever a row becomes READY (enqueued, or handed back by a worker),
delivered when its transaction commits; the worker LISTENs on a connection of its own and
wakes at once. SQLite has no NOTIFY: the worker asks SQLite every POLL_SECONDS whether anyone
committed anything (`PRAGMA data_version`, a few microseconds, no lock), and looks at the
queue when so.

Either way the caller still looks every `interval` seconds (a backstop: a notification lost
with a dropped connection costs at most that).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from typing import Any, Protocol

from django.db import connections

logger = logging.getLogger(__name__)

CHANNEL = "amazin_tasks"


class Wakeup(Protocol):
    def clear(self) -> None:
        """Forget what was announced so far (the caller is about to look)."""

    def wait(self, timeout: float) -> None:
        """Return when something may have been committed since `clear`, or after `timeout`."""

    def close(self) -> None: ...


def for_database() -> Wakeup:
    vendor = connections["default"].vendor
    if vendor == "postgresql":
        return Notified()
    if vendor == "sqlite":
        return Polled(str(connections["default"].settings_dict["NAME"]))
    return Sleeping()


class Sleeping:
    """Any other database: the backstop alone."""

    def clear(self) -> None:
        pass

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def close(self) -> None:
        pass


class Notified:
    """PostgreSQL: LISTEN on a connection of its own; reconnects after losing it."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.pending = False

    def _connected(self) -> Any:
        if self.conn is None or self.conn.closed:
            import psycopg

            params = connections["default"].get_connection_params()
            self.conn = psycopg.connect(**params, autocommit=True)
            self.conn.execute(f"LISTEN {CHANNEL}")
            self.pending = True  # anything committed while we were not listening
        return self.conn

    def clear(self) -> None:
        try:
            for _ in self._connected().notifies(timeout=0):
                pass
            self.pending = False
        except Exception as exc:  # the database is away: the caller's look will say so
            self._lost(exc)

    def wait(self, timeout: float) -> None:
        if self.pending:
            return
        started = time.monotonic()
        try:
            for _ in self._connected().notifies(timeout=timeout, stop_after=1):
                break
        except Exception as exc:
            self._lost(exc)
            time.sleep(max(0.0, timeout - (time.monotonic() - started)))

    def _lost(self, exc: Exception) -> None:
        logger.debug("wakeup: the LISTEN connection failed: %s", exc)
        self.close()
        self.pending = True

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None


class Polled:
    """SQLite: `PRAGMA data_version` changes when another connection commits."""

    POLL_SECONDS = 0.01

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.seen: int | None = None

    def _version(self) -> int | None:
        try:
            if self.conn is None:
                self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=1)
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            self.close()
            return None

    def clear(self) -> None:
        self.seen = self._version()

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(self.POLL_SECONDS, left))
            version = self._version()
            if version is None or version != self.seen:
                return

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
        self.conn = None
