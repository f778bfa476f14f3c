"""The test suite's task backend: run each task when its transaction commits, in-process.

Production stores tasks in the database for the worker (django-tasks-db). Tests would need
a worker beside every test; instead this runs a task as soon as the enqueuing transaction
commits, outside it, where the worker would next pick it up: at once when no transaction of
the app's own is open (only the test's wrapping ones), else on commit. A task deferred with
`run_after` (a retry's back-off) is kept in `DEFERRED` for the test to inspect or run.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django_tasks.backends.immediate import ImmediateBackend
from django_tasks.base import Task, TaskResult, TaskResultStatus
from django_tasks.utils import get_random_id

DEFERRED: list[TaskResult[Any]] = []


class AfterCommitBackend(ImmediateBackend):
    supports_defer = True

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        result: TaskResult[Any] = TaskResult(
            task=task,
            id=get_random_id(),
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        if task.run_after is not None:
            DEFERRED.append(result)
        # _from_testcase (private, not in django-stubs) marks TestCase's own atomic blocks.
        elif all(block._from_testcase for block in connection.atomic_blocks):  # type: ignore[attr-defined]
            self._execute_task(result)
        else:
            transaction.on_commit(lambda: self._execute_task(result), robust=True)
        return result


def run_deferred() -> int:
    """Run the tasks deferred so far (their back-off has 'passed'); returns how many ran."""
    due = list(DEFERRED)
    DEFERRED.clear()
    for result in due:
        AfterCommitBackend("default", {})._execute_task(result)
    return len(due)
