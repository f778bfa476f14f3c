"""The worker under a database restart: a PostgreSQL cluster of the test's own, restarted with
`pg_ctl restart` while a `shop_worker` waits on it; the worker logs the outage, reconnects
with back-off and carries on, and no task is lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.emulator import wait_until
from tests.support.processes import REPO, app_env, postgres_cluster, shop_worker
from tests.support.worker_tasks import marks

pytestmark = pytest.mark.postgres  # a cluster of its own: run once, in the PostgreSQL suite


def enqueue(env: dict[str, str], path: Path) -> None:
    """Queue `touch(path)` from another process, as the web server would."""
    code = f"from tests.support.worker_tasks import touch; touch.enqueue(path={str(path)!r})"
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_the_worker_survives_a_database_restart(tmp_path):
    with postgres_cluster() as cluster:
        env = app_env(cluster.url, WORKER_LEASE_SECONDS="2")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=REPO,
            env=env,
            check=True,
            timeout=600,
        )
        with shop_worker(env, tmp_path / "worker.log") as worker:
            enqueue(env, tmp_path / "before")
            wait_until(lambda: marks(tmp_path / "before", "ran") == [worker.pid], timeout=120)

            cluster.restart()
            enqueue(env, tmp_path / "after")

            wait_until(
                lambda: marks(tmp_path / "after", "ran") == [worker.pid],
                timeout=120,
                message="no task ran after the restart",
            )
            assert worker.proc.poll() is None
            log = worker.output()
    assert "the database is unavailable" in log, log
    assert "the database is back" in log, log
