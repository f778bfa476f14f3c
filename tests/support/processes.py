"""Real processes for tests of faults as they happen in production: `shop_worker`s on the test
database (stopped with SIGKILL when a test says so), a throwaway PostgreSQL cluster that can
be restarted, and a process's children.

The test database is shared with these processes, so tests that use them run with
`transaction=True` (what they commit, the processes see) and stop them before the test ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database (as the test sees it) as a URL for another process."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return f"postgres://{user}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of an app process as production runs it (its own settings, no
    `.env`), on `database_url`; Stripe at a closed port unless `extra` says otherwise."""
    return (
        os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "amazin.settings",
            "ENV_FILE": os.devnull,
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": "worker-tests-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "SITE_URL": "https://shop.example",
            "STRIPE_SECRET_KEY": "sk_test_worker_tests",
            "STRIPE_WEBHOOK_SECRET": "whsec_worker_tests",
            "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
            "RECONCILE_EVERY_SECONDS": "3600",
            "SWEEP_EVERY_SECONDS": "3600",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO),
        }
        | extra
    )


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        """As the kernel's OOM killer or `kill -9` would: no cleanup of any kind."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[Process]:
    """`command` (from the repository's root), its output into `log`; stopped at the end."""
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    process = Process(proc, log)
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def shop_worker(env: dict[str, str], log: Path, *args: str) -> Iterator[Process]:
    """`python manage.py shop_worker` in `env`."""
    with running([sys.executable, "manage.py", "shop_worker", *args], env, log) as process:
        yield process


def children(pid: int) -> list[int]:
    """The direct children of `pid` (from /proc)."""
    found: list[int] = []
    with suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            found.extend(
                int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            )
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class PostgresCluster:
    """A PostgreSQL server of the test's own, made as scripts/with-postgres.sh makes one
    (as the `postgres` user when run as root), that a test may restart."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            raise RuntimeError("no PostgreSQL server installed (scripts/with-postgres.sh)")
        self.bin = bins[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="amazin-test-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, *args: str) -> None:
        owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # No pipes: the server it starts would hold them open for as long as it runs.
        subprocess.run(
            [*owner, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=300,
        )  # fmt: skip

    def start(self) -> None:
        data = str(self.dir / "data")
        if not (self.dir / "data").exists():
            self._pg(str(self.bin / "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
                     "--no-sync", "-E", "UTF8")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg(str(self.bin / "pg_ctl"), "-D", data, "-l", str(self.dir / "server.log"),
                 "-w", "-o", options, "start")  # fmt: skip

    def restart(self) -> None:
        """As an operator's `pg_ctl restart` (fast mode: every connection is cut)."""
        self._pg(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                 str(self.dir / "server.log"), "-m", "fast", "-w", "restart")  # fmt: skip

    def stop(self) -> None:
        with suppress(subprocess.SubprocessError, OSError):
            self._pg(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                     "stop")  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
