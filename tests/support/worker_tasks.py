"""Tasks for the worker's own tests, run by `shop_worker` processes (tests/payments/test_worker.py).

Each leaves files behind as its trace, so a test can wait on them: `<path>.ran.<pid>` says
which process ran it. `hold` waits for `<path>.release` (bounded), so a test can keep a task
running while it kills its worker or starts another.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django_tasks import task

HOLD_SECONDS = 300.0  # a held task gives up waiting for its release after this


def mark(path: str, what: str) -> None:
    Path(f"{path}.{what}.{os.getpid()}").touch()


def marks(path: str | Path, what: str) -> list[int]:
    """The pids that left `what` on `path`."""
    path = Path(path)
    return sorted(int(p.name.rsplit(".", 1)[1]) for p in path.parent.glob(f"{path.name}.{what}.*"))


@task()
def touch(*, path: str) -> None:
    mark(path, "ran")


@task()
def hold(*, path: str) -> None:
    mark(path, "started")
    deadline = time.monotonic() + HOLD_SECONDS
    while not Path(f"{path}.release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the task under test: held until the test releases it
    mark(path, "ran")
