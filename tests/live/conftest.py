from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The test database, as a URL another process can use."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[str]:
    """`amazin.live_asgi` under granian, in its own process, on the test database."""
    port = free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "amazin.settings_test",
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--no-ws", "--log-level", "warning",
            "amazin.live_asgi:application",
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,  # its workers share its process group: see the end
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)  # polling a port, not hiding a race
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with suppress(ProcessLookupError):  # no worker outlives the test, even if orphaned
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
