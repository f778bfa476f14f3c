"""A worker's heartbeat: the row that says it is alive, and who is not.

Each `shop_worker` has a `Worker` row whose `beat_at` a thread of its own renews several
times per lease (`WORKER_LEASE_SECONDS`), whatever its tasks are doing: a task that is merely
long keeps its claim. What a worker claims names it (a task's `worker_ids`, a Stripe event's
`claimed_by`); once its beat is older than the lease (killed, frozen, cut off from the
database), the others take its claims over. A worker that was cut off from the database for
a while comes back under a new name (`renew`), so whatever it held under the old one is taken
over like a dead worker's, by itself or another: one rule, no special case.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import QuerySet
from django.utils import timezone

from payments.models import Worker

logger = logging.getLogger(__name__)

BEATS_PER_LEASE = 5
FORGET_AFTER = timedelta(days=1)  # rows of workers gone this long are deleted

_current = ""  # this process's name while it runs as a worker


def current() -> str:
    """The name this process claims under: its worker's, or "" if it is not a worker (the
    admin's replay, a command): such claims are taken again only after STALE_CLAIM."""
    return _current


def lease() -> timedelta:
    return timedelta(seconds=settings.WORKER_LEASE_SECONDS)


def live_ids() -> QuerySet[Worker, str]:
    """The names of the workers that beat within the lease (a subquery where used)."""
    return Worker.objects.filter(beat_at__gte=timezone.now() - lease()).values_list("id", flat=True)


def new_name() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


class Heartbeat:
    """The worker's row, and a thread that renews it and calls `on_beat` after each beat."""

    def __init__(self, *, on_beat: Callable[[], None] = lambda: None) -> None:
        self.on_beat = on_beat
        self.name = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None

    def start(self) -> None:
        """Register under a new name (raises DatabaseError while the database is away), and
        start beating."""
        self.renew()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)
            self._thread.start()

    def renew(self) -> None:
        """Take a new name: what the old one holds is left to be taken over."""
        global _current
        now = timezone.now()
        name = new_name()
        Worker.objects.create(
            id=name, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, beat_at=now
        )
        self.name = _current = name

    def stop(self) -> None:
        """Stop beating and remove the row (nothing is held any more)."""
        global _current
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=settings.WORKER_LEASE_SECONDS)
        _current = ""
        if self.name:
            try:
                Worker.objects.filter(pk=self.name).delete()
            except DatabaseError as exc:  # it will be forgotten later
                logger.warning("worker %s: could not remove its row: %s", self.name, exc)

    def interval(self) -> float:
        return float(settings.WORKER_LEASE_SECONDS) / BEATS_PER_LEASE

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval()):
                self.beat()
        finally:
            connection.close()  # this thread's own

    def beat(self) -> None:
        name = self.name
        if not name:  # between two names: the worker takes its next one when it can
            return
        try:
            close_old_connections()
            if not Worker.objects.filter(pk=name).update(beat_at=timezone.now()):
                # Deleted as long gone: what it held is anybody's already. Start afresh.
                logger.warning("worker %s: its row was gone; renaming", name)
                self.renew()
            self.on_beat()
        except DatabaseError as exc:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                logger.warning("worker %s: heartbeat failed: %s", self.name, exc)
            connection.close()
            return
        if self._failing_since is not None:
            logger.warning(
                "worker %s: heartbeat back after %.1f s",
                self.name,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None


def forget_old() -> int:
    """Delete the rows of workers gone for a day (their claims were taken over long ago)."""
    deleted, _ = Worker.objects.filter(beat_at__lt=timezone.now() - FORGET_AFTER).delete()
    return deleted
