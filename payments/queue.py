"""The background queue's two habits: retry with back-off, and periodic work.

Tasks run on django-tasks' database backend (django-tasks-db): a task is a row in the shop's
own database, enqueued in the same transaction as the change that needs it (an order marked
paid and its confirmation email commit together, or neither does), and run by
`python manage.py shop_worker`, which `make run` and `make serve` start. django-tasks runs a
task once; these helpers add what money work needs on top.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600


def retry_later(task: Task[Any, Any], *, attempt: int, error: Exception, **kwargs: Any) -> None:
    """Enqueue `task` again after an exponential back-off; re-raise `error` when attempts
    run out (the task then fails for good, logged, with its traceback in the admin)."""
    if attempt >= settings.TASK_MAX_ATTEMPTS:
        logger.error("%s gave up after %s attempts: %s", task.name, attempt, error)
        raise error
    delay = min(settings.TASK_RETRY_BASE_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    logger.warning("%s failed (attempt %s), again in %ss: %s", task.name, attempt, delay, error)
    task.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(
        attempt=attempt + 1, **kwargs
    )


def periodic_next(task: Task[Any, Any], *, every: float) -> None:
    """Enqueue the next run of a periodic task unless one is already waiting.

    Each periodic task calls this when it ends (so one run follows another), and the worker
    calls it at start (so a chain broken by a crash starts again).
    """
    if not settings.TASKS["default"]["BACKEND"].startswith("django_tasks_db."):
        return  # no stored queue to look in (tests run tasks as they are enqueued)
    with transaction.atomic():
        _periodic_lock(task)
        waiting = DBTaskResult.objects.filter(
            task_path=task.module_path, status=TaskResultStatus.READY
        ).exists()
        if not waiting:
            task.using(run_after=timezone.now() + timedelta(seconds=every)).enqueue()


def _periodic_lock(task: Task[Any, Any]) -> None:
    """Queue behind anyone enqueueing the same periodic task until this transaction ends:
    two workers starting together would both find none waiting, and start two chains. On
    SQLite the IMMEDIATE transaction holds the database's write lock already."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"amazin-periodic:{task.module_path}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)]
        )
