"""The background worker's loop: run queued tasks as soon as they commit, in batches, and take
over what a dead worker left.

Tasks stay django-tasks-db's rows (`DBTaskResult`), enqueued with `Task.enqueue` in the
transaction that needs them (payments/queue.py). django-tasks-db's own loop (`db_worker`)
looked every half second, spent three statements and two transactions of its own on every
task, logged two lines per task whatever LOG_LEVEL said, left a killed worker's task RUNNING
for ever and exited when the database restarted. This one:

- wakes when a task commits (payments/wakeup.py: LISTEN/NOTIFY on PostgreSQL, SQLite's
  `data_version`), and still looks every `interval` seconds, and at a deferred task's
  `run_after`;
- claims up to `batch` due tasks in one short transaction (`SELECT ... FOR UPDATE SKIP
  LOCKED`: workers never wait for each other or take the same row), runs them one by one,
  and marks the successful ones done together; a worker that dies between the two runs
  nothing twice that is not idempotent already (every task must be);
- beats a heartbeat beside its tasks (payments/heartbeat.py): a task that is merely long
  keeps its claim, and hands back, after SLOW_TASK_SECONDS, what the worker claimed and has
  not started, for other workers; a dead worker's RUNNING tasks go back to the queue after
  `WORKER_LEASE_SECONDS`;
- survives the database going away: logs, backs off, reconnects, and carries on under a new
  name (what it held is taken over as a dead worker's).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import TaskResultStatus
from django_tasks.base import Task, TaskContext
from django_tasks.signals import task_finished, task_started
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max

from payments import heartbeat, wakeup

logger = logging.getLogger(__name__)

BATCH = 32  # tasks claimed at once
SLOW_TASK_SECONDS = 2.0  # a task running this long hands the batch's rest back
FLUSH_SECONDS = 0.1  # successes are marked done at least this often within a batch
IDLE_LOOK_SECONDS = 0.05  # a waiting worker looks at most this often (see `_idle`)
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0)  # waits while the database is away
# A task that met a database error while the database answers (a statement or lock timeout,
# a query too large) runs again AGAIN_SECONDS later, doubling up to AGAIN_MAX_SECONDS, and
# fails after AGAIN_AT_MOST such errors: the database is fine, the task will not get through.
AGAIN_SECONDS, AGAIN_MAX_SECONDS, AGAIN_AT_MOST = 2.0, 60.0, 10
# Where a queued task keeps its count of those errors: `return_value`, unused until it ends
# (a success or a failure overwrites it).
DATABASE_ERRORS = "database_errors"

READY, RUNNING = TaskResultStatus.READY, TaskResultStatus.RUNNING
_tasks: dict[str, Task[Any, Any]] = {}


def task_for(path: str) -> Task[Any, Any]:
    task = _tasks.get(path)
    if task is None:
        task = _tasks[path] = import_string(path)
        if not isinstance(task, Task):
            raise TypeError(f"{path} is not a task")
    return task


class Worker:
    def __init__(
        self,
        *,
        interval: float = 5.0,
        batch: int = BATCH,
        once: bool = False,
        on_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self.interval, self.batch, self.once, self.on_idle = interval, batch, once, on_idle
        self.running = True
        self.heartbeat = heartbeat.Heartbeat(on_beat=self._on_beat)
        self.wakeup: wakeup.Wakeup = wakeup.Sleeping()
        self._lock = threading.Lock()  # _pending and _task_started, shared with the beat
        self._pending: list[DBTaskResult[Any, Any]] = []  # claimed, not started
        self._task_started: float | None = None
        self._done: list[uuid.UUID] = []  # ran successfully, not marked yet
        self._waiting = False
        self._idle_since: float | None = None  # when the last look found nothing
        self._full = False  # the last claim took a whole batch
        self._later: datetime | None = None  # the next deferred task's run_after
        self._away_since: float | None = None
        self._failures = 0

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        logger.info("worker starting (batch %s, backstop every %s s)", self.batch, self.interval)
        self.wakeup = wakeup.for_database()
        try:
            while self.running:
                try:
                    if not self.heartbeat.name:
                        self.heartbeat.start()
                        self.take_over()
                        self._database_back()  # it answers: said before any task runs
                    worked = self._cycle()
                    if not worked:
                        if self.once:
                            return
                        self._idle()
                except DatabaseError as exc:
                    self._database_away(exc)
        finally:
            self._finish()

    def _cycle(self) -> bool:
        """Claim a batch and run it; False if nothing was due."""
        self.wakeup.clear()  # from here on, what commits wakes the next wait
        close_old_connections()
        # After a full batch more is likely waiting: claim at once. Else look first (one read,
        # no lock: on SQLite a claim would take the write lock even to find nothing).
        due = self._full
        if not due:
            due, self._later = self._look()
        claimed = self._claim() if due else []
        self._full = len(claimed) == self.batch
        if not claimed:
            self._idle_since = time.monotonic()
            return False
        self._idle_since = None
        with self._lock:
            self._pending = claimed
        flushed = time.monotonic()
        while self.running:
            with self._lock:
                if not self._pending:
                    break
                row = self._pending.pop(0)
                self._task_started = time.monotonic()
            try:
                self._run(row)
            finally:
                with self._lock:
                    self._task_started = None
            if time.monotonic() - flushed > FLUSH_SECONDS:
                self._flush()
                flushed = time.monotonic()
        self._flush()
        return True

    def _look(self) -> tuple[bool, datetime | None]:
        """Whether any task is due, and when the next deferred one is, in one read: no
        lock, no transaction (on SQLite, no write lock for a look that finds nothing)."""
        now, never = timezone.now(), get_date_max()
        state = DBTaskResult.objects.filter(status=READY).aggregate(
            due=Count("pk", filter=Q(run_after=never) | Q(run_after__lte=now)),
            later=Min("run_after", filter=Q(run_after__gt=now) & ~Q(run_after=never)),
        )
        return bool(state["due"]), state["later"]

    def _idle(self) -> None:
        """Wait for a commit (or the backstop, or the next deferred task).

        All waiting workers wake at every commit, and only one gets the task: a worker that
        has just found nothing looks again IDLE_LOOK_SECONDS later at the earliest, so that
        a storm of small commits costs each waiting worker at most 1/IDLE_LOOK_SECONDS looks a
        second rather than one per commit, and each look finds a few tasks to claim together
        (a lone commit is looked at at once)."""
        self.on_idle()
        timeout = self.interval
        if self._later is not None:
            timeout = max(0.0, min(timeout, (self._later - timezone.now()).total_seconds()))
        self._waiting = True
        try:
            if self.running:
                self.wakeup.wait(timeout)
            if self.running and self._idle_since is not None:
                time.sleep(max(0.0, self._idle_since + IDLE_LOOK_SECONDS - time.monotonic()))
        finally:
            self._waiting = False

    # -- claiming and running ------------------------------------------------------------------

    def _claim(self) -> list[DBTaskResult[Any, Any]]:
        me = self.heartbeat.name
        with transaction.atomic():
            due = DBTaskResult.objects.ready().select_for_update(skip_locked=True)
            rows = list(due[: self.batch])
            if not rows:
                return []
            now = timezone.now()
            by_history: dict[tuple[str, ...], list[uuid.UUID]] = {}
            for row in rows:  # worker_ids grows by one name: one UPDATE per distinct history
                by_history.setdefault(tuple(row.worker_ids), []).append(row.id)
                row.status, row.started_at = RUNNING, now
                row.worker_ids = [*row.worker_ids, me]
            for history, ids in by_history.items():
                DBTaskResult.objects.filter(id__in=ids).update(
                    status=RUNNING, started_at=now, worker_ids=[*history, me]
                )
        return rows

    def _run(self, row: DBTaskResult[Any, Any]) -> None:
        started = time.monotonic()
        try:
            task = task_for(row.task_path)
            args, kwargs = row.args_kwargs["args"], row.args_kwargs["kwargs"]
            task_started.send(sender=DatabaseBackend, task_result=row.task_result)
            if task.takes_context:
                value = task.call(TaskContext(task_result=row.task_result), *args, **kwargs)
            else:
                value = task.call(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, OperationalError | InterfaceError):
                # The database's fault, not the task's (a restart, a deadlock). Away: it
                # stays claimed, taken over from this worker's old name once the database
                # is back, however long that takes; back already: queued again a little
                # later, and failed if that keeps happening (`_again_later`).
                if not database_usable():
                    raise
                self._again_later(row, exc)
                return
            row.set_failed(exc)
            task_finished.send(sender=DatabaseBackend, task_result=row.task_result)
            return
        row.status = TaskResultStatus.SUCCESSFUL
        if value is None:
            self._done.append(row.id)
        else:
            row.set_successful(value)
        task_finished.send(sender=DatabaseBackend, task_result=row.task_result)
        logger.debug("task %s ran in %.1f ms", row.task_path, (time.monotonic() - started) * 1000)

    def _again_later(self, row: DBTaskResult[Any, Any], exc: Exception) -> None:
        errors = _database_errors(row) + 1
        if errors >= AGAIN_AT_MOST:
            logger.error("task %s (%s) gave up after %s database errors: %s",
                         row.task_path, row.id, errors, exc)  # fmt: skip
            row.set_failed(exc)
            task_finished.send(sender=DatabaseBackend, task_result=row.task_result)
            return
        delay = min(AGAIN_SECONDS * 2 ** (errors - 1), AGAIN_MAX_SECONDS)
        logger.warning("task %s (%s) met a database error (%s of %s), again in %s s: %s",
                       row.task_path, row.id, errors, AGAIN_AT_MOST, delay, exc)  # fmt: skip
        DBTaskResult.objects.filter(id=row.id, status=RUNNING).update(
            status=READY,
            run_after=timezone.now() + timedelta(seconds=delay),
            return_value={DATABASE_ERRORS: errors},
        )

    def _flush(self) -> None:
        """Mark the tasks that ran successfully done, together."""
        if not self._done:
            return
        DBTaskResult.objects.filter(id__in=self._done, status__in=[READY, RUNNING]).update(
            status=TaskResultStatus.SUCCESSFUL,
            finished_at=timezone.now(),
            return_value=None,
            exception_class_path="",
            traceback="",
        )
        self._done = []

    # -- beside the tasks (the heartbeat's thread) ---------------------------------------------

    def _on_beat(self) -> None:
        self._hand_back_if_slow()
        self.take_over()

    def _hand_back_if_slow(self) -> None:
        with self._lock:
            slow = self._task_started and time.monotonic() - self._task_started > SLOW_TASK_SECONDS
            if not (slow and self._pending):
                return
            ids, self._pending = [row.id for row in self._pending], []
        handed = DBTaskResult.objects.filter(id__in=ids, status=RUNNING).update(status=READY)
        logger.info("a task runs long: %s queued task(s) handed back to other workers", handed)

    def take_over(self) -> int:
        """Put back in the queue the tasks of workers whose heartbeat stopped.

        A task goes back only while its `worker_ids` are still those read: of two workers
        taking over the same task at once, the second would otherwise put it back again after
        a third had claimed it, and it would run twice at once."""
        taken = 0
        for names, ids in self._orphans().items():
            taken += DBTaskResult.objects.filter(
                id__in=ids, status=RUNNING, worker_ids=list(names)
            ).update(status=READY)
        if taken:
            logger.warning("took over %s task(s) of worker(s) that stopped", taken)
        heartbeat.forget_old()
        return taken

    def _orphans(self) -> dict[tuple[str, ...], list[uuid.UUID]]:
        """The running tasks of workers whose heartbeat stopped, by their `worker_ids`."""
        live = set(heartbeat.live_ids())
        orphans: dict[tuple[str, ...], list[uuid.UUID]] = {}
        running = DBTaskResult.objects.filter(status=RUNNING).values_list("id", "worker_ids")
        for pk, names in running:
            if not names or names[-1] not in live:
                orphans.setdefault(tuple(names), []).append(pk)
        return orphans

    # -- the database going away ---------------------------------------------------------------

    def _database_away(self, exc: DatabaseError) -> None:
        delay = BACKOFF_SECONDS[min(self._failures, len(BACKOFF_SECONDS) - 1)]
        self._failures += 1
        if self._away_since is None:
            self._away_since = time.monotonic()
        logger.warning("worker: the database is unavailable (%s); again in %.1f s", exc, delay)
        with self._lock:
            self._pending = []  # claimed under this name: taken over once it is renamed
        self.heartbeat.name = ""  # a new name once the database answers
        connection.close()
        self.wakeup.close()
        self._sleep(delay)

    def _database_back(self) -> None:
        if self._away_since is not None:
            logger.warning(
                "worker: the database is back after %.1f s; carrying on as %s",
                time.monotonic() - self._away_since,
                self.heartbeat.name,
            )
        self._away_since, self._failures = None, 0

    def _sleep(self, seconds: float) -> None:
        self._waiting = True
        try:
            time.sleep(seconds)
        finally:
            self._waiting = False

    # -- stopping ------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Mark what ran, hand back what did not start, stop beating."""
        try:
            self._flush()
            with self._lock:
                ids, self._pending = [row.id for row in self._pending], []
            if ids:
                DBTaskResult.objects.filter(id__in=ids, status=RUNNING).update(status=READY)
        except DatabaseError as exc:
            logger.warning("worker: could not hand its tasks back (%s): taken over later", exc)
        finally:
            self.heartbeat.stop()
            self.wakeup.close()
            logger.info("worker stopped")

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        """SIGTERM / Ctrl-C: finish the running task, then stop; a second one stops now."""
        if not self.running:
            sys.exit(1)
        logger.warning("worker: %s, stopping after the running task", signal.strsignal(signum))
        self.running = False
        if self._waiting:
            raise SystemExit(0)


def _database_errors(row: DBTaskResult[Any, Any]) -> int:
    kept = row.return_value
    return int(kept.get(DATABASE_ERRORS, 0)) if isinstance(kept, dict) else 0


def database_usable() -> bool:
    """Whether the database answers (a new connection if the old one broke)."""
    try:
        connection.close_if_unusable_or_obsolete()
        connection.ensure_connection()
        return connection.is_usable()
    except Exception:
        return False
