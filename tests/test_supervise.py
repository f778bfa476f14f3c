"""`make serve` and `make run` keep their processes running (scripts/supervise.py): a process
killed with SIGKILL is started again while the others carry on, a crash loop backs off and
then gives up, and giving up stops everything that was started."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.supervise import BACKOFF_SECONDS, GaveUp, Supervisor
from tests.support.emulator import wait_until
from tests.support.processes import REPO, alive, children, command_line, free_port

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


class Clock:
    """The supervisor's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Said(list[str]):
    """What the supervisor logged."""

    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    running = Supervisor(cwd=REPO, env=os.environ, clock=Clock(), say=Said())
    yield running
    running.stop(timeout=10)


def test_a_killed_child_is_started_again_and_the_others_keep_running(supervisor):
    clock = supervisor.clock
    assert isinstance(clock, Clock)
    worker = supervisor.start("worker", SLEEPER)
    web = supervisor.start("web", SLEEPER)
    assert worker.proc is not None and web.proc is not None
    killed = worker.proc.pid

    os.kill(killed, signal.SIGKILL)
    worker.proc.wait(timeout=30)
    supervisor.check()
    clock.now += BACKOFF_SECONDS[0]
    supervisor.check()

    assert worker.pids[-1] != killed and alive(worker.pids[-1])
    assert web.pids == [web.proc.pid] and alive(web.proc.pid)
    assert f"worker (pid {killed}) was killed by SIGKILL" in " ".join(supervisor.say)


def test_a_child_that_keeps_dying_young_backs_off_then_gives_up(supervisor):
    clock = supervisor.clock
    assert isinstance(clock, Clock)
    child = supervisor.start("crasher", CRASHER)
    delays = []

    for _ in range(5):
        assert child.proc is not None
        child.proc.wait(timeout=60)
        supervisor.check()  # notices the death
        assert child.restart_at is not None
        delays.append(child.restart_at - clock.now)
        clock.now = child.restart_at
        supervisor.check()  # starts it again
    assert child.proc is not None
    child.proc.wait(timeout=60)

    with pytest.raises(GaveUp, match="crasher died 6 times in a row"):
        supervisor.check()
    assert delays == [1, 2, 4, 8, 16]


def test_a_child_that_ran_a_while_starts_its_back_off_afresh(supervisor):
    clock = supervisor.clock
    assert isinstance(clock, Clock)
    child = supervisor.start("worker", SLEEPER)
    for lived in (1.0, 1.0, 120.0):  # two young deaths, then one after a long run
        clock.now += lived
        assert child.proc is not None
        child.proc.kill()
        child.proc.wait(timeout=30)
        supervisor.check()
        assert child.restart_at is not None
        delay = child.restart_at - clock.now
        clock.now = child.restart_at
        supervisor.check()

    assert delay == BACKOFF_SECONDS[0]


# A child that says which stop signals it got and who sent them, then exits.
TELLER = """
import os, signal, sys
from pathlib import Path
stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
signal.pthread_sigmask(signal.SIG_BLOCK, stops)
Path(sys.argv[1] + ".ready").write_text(str(os.getpid()))
got = [signal.sigwaitinfo(stops)]
while (more := signal.sigtimedwait(stops, 0)) is not None:  # sent at once with the first
    got.append(more)
Path(sys.argv[1]).write_text(" ".join(f"{signal.Signals(i.si_signo).name}:{i.si_pid}" for i in got))
"""
SUPERVISING = """
import os, sys
from scripts.supervise import Supervisor, stop_on_signals
supervisor = Supervisor(cwd=os.getcwd(), env=os.environ)
stop_on_signals(supervisor)
supervisor.start("teller", [sys.executable, "-c", sys.argv[1], sys.argv[2]])
supervisor.run(every=0.05)
"""


@pytest.mark.parametrize(
    ("terminal_sends", "child_gets"),
    [("SIGINT", "SIGINT"), ("SIGHUP", "SIGTERM")],  # Ctrl-C; the terminal closed
)
def test_a_terminals_signal_reaches_each_child_once_through_the_supervisor(
    tmp_path, terminal_sends, child_gets
):
    told = tmp_path / "told"
    # In a session of its own, as a terminal's foreground process group.
    supervising = subprocess.Popen(
        [sys.executable, "-c", SUPERVISING, TELLER, str(told)], cwd=REPO, start_new_session=True
    )
    ready = Path(f"{told}.ready")
    child = 0
    try:
        child = int(wait_until(lambda: ready.exists() and ready.read_text(), timeout=120))

        os.killpg(supervising.pid, signal.Signals[terminal_sends])  # to the whole group

        code = supervising.wait(timeout=120)
    finally:
        if supervising.poll() is None:
            supervising.kill()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)
    assert code == 0
    assert told.read_text() == f"{child_gets}:{supervising.pid}"


def shop_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return (
        os.environ
        | {
            "ENV_FILE": os.devnull,
            "DJANGO_SETTINGS_MODULE": "amazin.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "SECRET_KEY": "supervise-tests-only-secret-key-0123456789-abcdefghijklmnopqrstuv",
            "SITE_URL": "https://shop.example",
            "STRIPE_SECRET_KEY": "sk_test_supervise_tests",
            "STRIPE_WEBHOOK_SECRET": "whsec_supervise_tests",
            "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
            "LOG_LEVEL": "WARNING",
        }
        | extra
    )


def shop_workers(pid: int) -> list[int]:
    return [c for c in children(pid) if "shop_worker" in command_line(c) and alive(c)]


def beating(database: Path) -> set[int]:
    """The pids of the workers with a heartbeat row in the shop's database."""
    try:
        with sqlite3.connect(database, timeout=10) as db:
            return {pid for (pid,) in db.execute("SELECT pid FROM payments_worker")}
    except sqlite3.Error:
        return set()


def test_make_serve_starts_a_killed_shop_worker_again(tmp_path):
    port = free_port()
    env = shop_env(tmp_path, PORT=str(port), SHOP_WORKERS="1", WEB_CONCURRENCY="1")
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "scripts/serve.py"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        first = wait_until(lambda: shop_workers(serve.pid), timeout=300)[0]
        wait_until(lambda: first in beating(tmp_path / "db.sqlite3"), timeout=120)

        os.kill(first, signal.SIGKILL)

        second = wait_until(
            lambda: [p for p in shop_workers(serve.pid) if p != first], timeout=120
        )[0]
        wait_until(lambda: second in beating(tmp_path / "db.sqlite3"), timeout=120)
        assert serve.poll() is None
        started = [p for p in children(serve.pid) if alive(p)]
    finally:
        serve.terminate()
        code = serve.wait(timeout=60)
    assert code == 0
    assert not [p for p in started if alive(p)]
    said = (tmp_path / "serve.log").read_text()
    assert f"shop_worker 1 (pid {first}) was killed by SIGKILL" in said
    assert f"shop_worker 1 started again (pid {second})" in said


def test_make_run_stops_everything_it_started_when_the_shop_never_answers(tmp_path):
    # The shop's port is taken by something that accepts and never answers.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(16)
    env = shop_env(
        tmp_path,
        PORT=str(taken.getsockname()[1]),
        EMULATOR_PORT=str(free_port()),
        EMULATOR_DATA=str(tmp_path / "emulator.sqlite3"),
        RUN_WAIT_SECONDS="20",
        DEBUG="1",
    )
    for name in ("SITE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"):
        env.pop(name)
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "scripts/dev.py"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    seen: dict[int, str] = {}  # every child it had: pid -> command line
    deadline = time.monotonic() + 600
    try:
        while run.poll() is None and time.monotonic() < deadline:
            # Read again while they live: just after its fork a child still reads as its parent.
            seen.update({p: command_line(p) or seen.get(p, "") for p in children(run.pid)})
            time.sleep(0.1)  # sampling its children while it runs
    finally:
        if run.poll() is None:
            run.kill()
        taken.close()
    said = (tmp_path / "run.log").read_text()

    assert run.returncode == 1, said
    assert "did not come up" in said and "stopping everything" in said, said
    started = " ".join(seen.values())
    assert "stripe_emulator" in started and "shop_worker" in started  # it had started them
    assert not [seen[p] for p in seen if alive(p)]
