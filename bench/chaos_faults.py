"""The chaos run's faults (`bench/chaos.py --faults`, issue 20): while the shoppers buy and the
shop settles, at random moments (every FAULT_EVERY seconds, give or take):

- `kill -9` of a background worker (`shop_worker`): the supervisor (scripts/supervise.py, as
  `make serve` runs it) starts it again, and its tasks and Stripe events are taken over;
- `kill -9` of a web process (one of granian's workers): granian starts another; the
  requests it was answering are lost, and the shoppers try again, as browsers do;
- on PostgreSQL, a database restart (`pg_ctl restart`, on a cluster of the run's own);
- an answer lost on its way back from Stripe (tests/support/fault_proxy.py, between the shop
  and the emulator): Stripe acted, the shop never heard.

Runs in the bench process beside chaos.py's shoppers, in a thread of its own.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from scripts.supervise import Supervisor
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.processes import PostgresCluster, alive, children

FAULT_EVERY = (0.5, 2.5)  # seconds between two faults, at random
# What the shop asks Stripe, whose answers may be lost: creates, expiries, refunds, cancels,
# and the reads fulfilment and the sweep make.
LOSABLE = [
    ("POST", r"^/v1/checkout/sessions$"),
    ("POST", r"^/v1/checkout/sessions/[^/]+/expire$"),
    ("GET", r"^/v1/checkout/sessions/[^/]+$"),
    ("POST", r"^/v1/refunds$"),
    ("GET", r"^/v1/refunds"),
    ("GET", r"^/v1/disputes"),
    ("POST", r"^/v1/payment_intents/[^/]+/cancel$"),
    ("GET", r"^/v1/events$"),
]


class Faults:
    def __init__(
        self,
        *,
        supervisor: Supervisor,
        proxy: FaultProxy,
        cluster: PostgresCluster | None,
        seed: int,
        on_restart: Callable[[], None] = lambda: None,
    ) -> None:
        self.supervisor, self.proxy, self.cluster = supervisor, proxy, cluster
        self.on_restart = on_restart
        self.rng = random.Random(seed)
        self.done: Counter[str] = Counter()
        self.restarts = True  # database restarts allowed (not while the bench writes itself)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)

    def start(self) -> Faults:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more faults; what the proxy holds goes on, and the shop's processes are all
        running again."""
        self._stop.set()
        self._thread.join(timeout=120)
        self.proxy.clear()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not self._all_running():
            self.supervisor.check()
            time.sleep(0.2)

    def _all_running(self) -> bool:
        return all(c.proc is not None and c.proc.poll() is None for c in self.supervisor.children)

    def _run(self) -> None:
        next_fault = time.monotonic() + self.rng.uniform(*FAULT_EVERY)
        while not self._stop.is_set():
            self.supervisor.check()  # a killed child is started again
            if time.monotonic() >= next_fault:
                self._one()
                next_fault = time.monotonic() + self.rng.uniform(*FAULT_EVERY)
            self._stop.wait(0.2)

    def _one(self) -> None:
        kinds: list[tuple[str, Callable[[], Any]]] = [
            ("worker killed (kill -9)", self._kill_worker),
            ("web process killed (kill -9)", self._kill_web),
            ("Stripe answer lost", self._lose_answer),
            ("Stripe answer lost", self._lose_answer),
        ]
        if self.cluster is not None and self.restarts:
            kinds.append(("database restarted", self._restart_database))
        name, fault = self.rng.choice(kinds)
        if fault() is not False:
            self.done[name] += 1

    def _kill_worker(self) -> bool:
        workers = [
            c
            for c in self.supervisor.children
            if c.name.startswith("shop_worker") and c.proc is not None and c.proc.poll() is None
        ]
        if not workers:
            return False
        child = self.rng.choice(workers)
        assert child.proc is not None
        os.kill(child.proc.pid, signal.SIGKILL)
        return True

    def _kill_web(self) -> bool:
        servers = [c for c in self.supervisor.children if c.name == "granian" and c.proc]
        web = [p for s in servers if s.proc for p in children(s.proc.pid) if alive(p)]
        if not web:
            return False
        os.kill(self.rng.choice(web), signal.SIGKILL)  # granian starts another worker
        return True

    def _lose_answer(self) -> bool:
        """The next answer to a request of a kind the shop has been making lately."""
        recent = self.proxy.log[-200:]
        made = [
            (method, path)
            for method, path in LOSABLE
            if any(s.method == method and re.search(path, s.path) for s in recent)
        ]
        method, path = self.rng.choice(made or LOSABLE)
        self.proxy.add(Fault.LOSE_ANSWER, path=path, method=method, times=1)
        return True

    def _restart_database(self) -> bool:
        assert self.cluster is not None
        self.cluster.restart()
        self.on_restart()
        return True

    def summary(self) -> list[str]:
        lost = sum(1 for seen in self.proxy.log if seen.fault is Fault.LOSE_ANSWER)
        lines = [f"{name:<40} {count}" for name, count in sorted(self.done.items())]
        lines.append(f"{'  answers lost on the way (requests hit)':<40} {lost}")
        lines.append(f"{'Stripe requests through the proxy':<40} {len(self.proxy.log)}")
        restarts = sum(len(c.pids) - 1 for c in self.supervisor.children)
        lines.append(f"{'processes started again (supervisor)':<40} {restarts}")
        return lines
