"""Keep the shop's processes running: `make serve` and `make run` start theirs through this.

A child that dies (a `kill -9`, an out-of-memory kill, a crash) is started again after a
back-off that doubles while it keeps dying young (1, 2, 4, ... 30 s), and is reset once it
has run for a while: a crash loop neither spins nor stops the rest of the shop. A child that
dies young GIVE_UP_AFTER times in a row (a taken port, a broken configuration) is a fault no
restart will mend: everything is stopped and the supervisor says why. Everything is logged
on stderr, and `stop` ends every child it started, whatever happened.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
HEALTHY_AFTER_SECONDS = 30.0  # a child that ran this long starts its back-off afresh
GIVE_UP_AFTER = 6  # deaths in a row, each before HEALTHY_AFTER_SECONDS


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    young_deaths: int = 0  # in a row
    restart_at: float | None = None
    pids: list[int] = field(default_factory=list)  # every pid it had, for the record


class GaveUp(Exception):
    """A child kept dying young: restarting it will not help."""


class Supervisor:
    def __init__(
        self,
        *,
        cwd: Path,
        env: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] = log,
        prefix: str = "serve",
        output: int | None = None,
        give_up_after: int = GIVE_UP_AFTER,
    ) -> None:
        self.cwd, self.env, self.clock, self.say, self.prefix = cwd, dict(env), clock, say, prefix
        self.output = output  # the children's stdout and stderr (None: this process's)
        self.give_up_after = give_up_after
        self.children: list[Child] = []
        self.stopping = False

    def start(self, name: str, argv: list[str]) -> Child:
        child = Child(name, list(argv))
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        # A session of its own: Ctrl-C in the terminal signals the terminal's process group,
        # which would otherwise include every child, and each would get it twice (from the
        # terminal, then from `stop`): a worker takes a second signal as "stop now", and
        # never finishes its running task. Only the supervisor signals its children.
        child.proc = subprocess.Popen(
            child.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self.output,
            stderr=self.output,
            start_new_session=True,
        )
        child.started_at, child.restart_at = self.clock(), None
        child.pids.append(child.proc.pid)

    def check(self) -> None:
        """Notice children that died, start those whose back-off has passed; raises GaveUp."""
        if self.stopping:
            return
        now = self.clock()
        for child in self.children:
            proc = child.proc
            if child.restart_at is None and proc is not None and proc.poll() is not None:
                lived = now - child.started_at
                child.young_deaths = child.young_deaths + 1 if lived < HEALTHY_AFTER_SECONDS else 1
                if child.young_deaths >= self.give_up_after:
                    raise GaveUp(
                        f"{child.name} died {child.young_deaths} times in a row within "
                        f"{HEALTHY_AFTER_SECONDS:.0f} s of starting (last: {describe(proc)})"
                    )
                delay = BACKOFF_SECONDS[min(child.young_deaths, len(BACKOFF_SECONDS)) - 1]
                child.restart_at = now + delay
                self.say(
                    f"{self.prefix}: {child.name} (pid {proc.pid}) {describe(proc)} after "
                    f"{lived:.1f} s; starting it again in {delay:.0f} s"
                )
            if child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                assert child.proc is not None
                self.say(f"{self.prefix}: {child.name} started again (pid {child.proc.pid})")

    def run(self, *, every: float = 0.5, until: Callable[[], bool] = lambda: False) -> None:
        """Watch the children until `until()` or `stop`; raises GaveUp."""
        while not self.stopping and not until():
            self.check()
            time.sleep(every)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Send `sig` to every child still running, wait for them, kill the stragglers."""
        self.stopping = True
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in reversed(running):
            proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def describe(proc: subprocess.Popen[bytes]) -> str:
    code = proc.returncode
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def stop_on_signals(supervisor: Supervisor) -> None:
    """SIGTERM and Ctrl-C stop the children (with the same signal) and then this process; so
    does the terminal closing (SIGHUP, sent on as SIGTERM), which no longer reaches the
    children, in sessions of their own."""

    def handler(signum: int, _frame: object) -> None:
        supervisor.stop(signal.SIGTERM if signum == signal.SIGHUP else signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, handler)
