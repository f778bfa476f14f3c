"""The background worker under load: signed webhooks from 16 senders applied by 1, 2 and 4
`shop_worker`s; how long a webhook's change takes to reach viewers on other processes; how
long a confirmation email takes to reach the mail backend.

    scripts/with-postgres.sh .venv/bin/python bench/webhooks.py
    .venv/bin/python bench/webhooks.py --workers 1 --events 500       # SQLite, a quick look

`bench/run.py` runs it last. What one run does, on `make serve`'s server (`bench.run.server`:
granian, a worker per core on PostgreSQL, two on SQLite):

- **Applied events/s.** For each worker count (`--workers`, default 1,2,4), that many
  `python manage.py shop_worker` processes, started and waited for (each has beaten its
  heartbeat); then `--senders` threads, each on a kept-alive connection, post `--events`
  distinct signed `product.created` events, as fast as they are answered. Reported: events/s
  answered 200 (first send to last answer), events/s applied (first send to the last
  event's `processed_at`), POST p50/p99, and that nothing was lost: every event answered
  200, recorded once, processed, and its product created.
- **Change to viewer.** `--viewers` SSE clients on `/live/` (spread over the server's
  processes by the kernel) and the default number of workers; `--rounds` times, at a random
  gap of 0-300 ms (so a poll, if any, cannot line up), a signed `product.updated` renaming
  a product is posted; latency runs from the POST to each viewer seeing the new name
  (`bench/fanout.py`): webhook, queue, worker, commit, NOTIFY (or SQLite's change log),
  render, stream.
- **Email.** `--rounds` times, `/bench/order-email` commits an order with its confirmation
  email queued (as fulfilment does) and answers the commit's time; the bench's mail backend
  (`bench/mail.py`) notes when the worker hands it the message.
- **Statements per event**, counted in this process: the webhook's (Django's test client)
  and the worker's (a batch of events run by the worker here, divided).

Stripe is never called: the worker's reconciliation points at a closed local port.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import run  # noqa: E402

CREATED = int(time.time()) - 7200


def sign(payload: bytes, secret: str = run.SECRET) -> str:
    """`Stripe-Signature` exactly as Stripe makes it."""
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def product_event(
    kind: str,
    event_id: str,
    product_id: str,
    name: str,
    created: int = CREATED,
    default_price: str | None = None,
) -> dict[str, Any]:
    """A `product.created` / `product.updated` event shaped like Stripe's."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "data": {
            "object": {
                "id": product_id,
                "object": "product",
                "active": True,
                "name": name,
                "description": "A fine thing, " * 8,
                "images": [f"https://example.com/img/{product_id}.png"],
                "metadata": {"category": "Cookware"},
                "default_price": default_price,
                "created": CREATED,
                "updated": created,
                "livemode": False,
            }
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def post(conn: http.client.HTTPConnection, body: dict[str, Any]) -> int:
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(payload)}
    conn.request("POST", "/stripe/webhook/", body=payload, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


class Senders:
    """`count` threads posting `bodies` between them, each on its own connection."""

    def __init__(self, port: int, bodies: list[dict[str, Any]], *, count: int) -> None:
        self.port, self.bodies, self.count = port, bodies, count
        self.next = 0
        self.lock = threading.Lock()
        self.results: list[tuple[int, float, float]] = []  # (status, sent, answered)

    def run(self) -> None:
        threads = [threading.Thread(target=self.send) for _ in range(self.count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def take(self) -> dict[str, Any] | None:
        with self.lock:
            if self.next >= len(self.bodies):
                return None
            self.next += 1
            return self.bodies[self.next - 1]

    def send(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        mine = []
        while (body := self.take()) is not None:
            sent = time.time()
            try:
                status = post(conn, body)
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                status = 0
            mine.append((status, sent, time.time()))
        conn.close()
        with self.lock:
            self.results.extend(mine)


@contextmanager
def shop_workers(env: dict[str, str], count: int, log: Path) -> Iterator[list[int]]:
    """`count` `python manage.py shop_worker` processes, their output into `log`; waits
    until each has beaten its heartbeat (so start-up is not timed)."""
    procs = []
    started = time.time()
    with log.open("ab") as out:
        for _ in range(count):
            procs.append(
                subprocess.Popen(
                    [run.PY, "manage.py", "shop_worker"],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        wait_ready(count, since=started, procs=procs)
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(count: int, *, since: float, procs: list[subprocess.Popen[bytes]]) -> None:
    from datetime import UTC, datetime

    from django.db import connection

    deadline = time.monotonic() + 120
    if "payments_worker" not in connection.introspection.table_names():
        time.sleep(5)  # a worker from before heartbeats (the 'before' figures): start-up
        return
    since_at = datetime.fromtimestamp(since, UTC)
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a shop_worker exited"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM payments_worker WHERE started_at >= %s", [since_at]
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.1)
    raise RuntimeError("the workers did not start")


def cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes and their descendants."""
    from bench import fanout

    return sum(fanout._server_cpu(pid) or 0.0 for pid in pids)


def postmaster() -> list[int]:
    """The PostgreSQL server's main process (its backends are its children), if local."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    status = Path(f"/proc/{backend}/status")
    if not status.exists():
        return []
    ppid = next(line for line in status.read_text().splitlines() if line.startswith("PPid:"))
    return [int(ppid.split()[1])]


@dataclass
class Applied:
    workers: int
    sent: int
    answered: float  # events/s answered 200
    applied: float  # events/s applied
    p50: float
    p99: float
    ok: int
    refused: int
    recorded: int
    processed: int
    created: int
    cpu_ms: tuple[float, float, float]  # per event: the workers, the web server, PostgreSQL

    def row(self) -> list[str]:
        lost = self.sent - self.created
        whole = lost == 0 and self.refused == 0 and self.processed == self.sent
        return [
            str(self.workers),
            f"{self.sent:,}",
            f"{self.answered:.0f}",
            f"**{self.applied:.0f}**" + (" ✓" if self.applied >= 400 else ""),
            f"{self.p50:.1f}/{self.p99:.1f}",
            " / ".join(f"{ms:.1f}" for ms in self.cpu_ms),
            f"{self.refused} non-2xx, {self.recorded} recorded, {self.processed} processed, "
            f"{lost} lost" + (" ✓" if whole else " LOST"),
        ]


def applied_rate(
    env: dict[str, str], server: int, port: int, *, workers: int, events: int, senders: int,
    log: Path,
) -> Applied:  # fmt: skip
    from django.db.models import Max

    from payments.models import StripeEvent
    from store.models import Product

    tag = secrets.token_hex(3)
    bodies = [
        product_event("product.created", f"evt_bc{tag}{i:06d}", f"prod_bc{tag}{i:06d}", f"New {i}")
        for i in range(events)
    ]
    with shop_workers(env, workers, log) as pids:
        groups = (pids, [server], postmaster())
        cpu_before = [cpu(group) for group in groups]
        group = Senders(port, bodies, count=senders)
        group.run()
        first = min(sent for _, sent, _ in group.results)
        last_answer = max(answered for _, _, answered in group.results)
        ok = sum(1 for status, _, _ in group.results if status == 200)
        mine = StripeEvent.objects.filter(stripe_id__startswith=f"evt_bc{tag}")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if mine.filter(status=StripeEvent.Status.PROCESSED).count() >= ok:
                break
            time.sleep(0.05)  # the bench polls the database for the workers' progress
        cpu_ms = tuple(
            (cpu(g) - b) * 1000 / events for g, b in zip(groups, cpu_before, strict=True)
        )
    processed = mine.filter(status=StripeEvent.Status.PROCESSED)
    done_at = processed.aggregate(last=Max("processed_at"))["last"]
    latencies = sorted((a - s) * 1000 for status, s, a in group.results if status == 200)
    return Applied(
        workers=workers,
        sent=events,
        answered=ok / (last_answer - first),
        applied=processed.count() / (done_at.timestamp() - first) if done_at else 0.0,
        p50=statistics.median(latencies) if latencies else 0.0,
        p99=latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        ok=ok,
        refused=events - ok,
        recorded=mine.count(),
        processed=processed.count(),
        created=Product.objects.filter(stripe_id__startswith=f"prod_bc{tag}").count(),
        cpu_ms=cpu_ms,  # type: ignore[arg-type]
    )


def drain_rate(env: dict[str, str], *, workers: int, events: int, log: Path) -> tuple[float, float]:
    """Events/s applied by `workers` workers from a backlog, with the web server idle: the
    workers' own scaling. The events are recorded and queued in one transaction while the
    workers wait; from its commit to the last `processed_at`. Also the workers' CPU ms per
    event."""
    from django.db import transaction
    from django.db.models import Max

    from payments.models import StripeEvent
    from payments.webhooks import stripe_event_receive

    tag = secrets.token_hex(3)
    with shop_workers(env, workers, log) as pids:
        with transaction.atomic():
            for i in range(events):
                stripe_event_receive(
                    event=product_event(
                        "product.created", f"evt_bd{tag}{i:06d}", f"prod_bd{tag}{i:06d}", "D"
                    )
                )
            before = cpu(pids)
        committed = time.time()
        mine = StripeEvent.objects.filter(stripe_id__startswith=f"evt_bd{tag}")
        done = mine.filter(status=StripeEvent.Status.PROCESSED)
        deadline = time.monotonic() + 600
        while done.count() < events and time.monotonic() < deadline:
            time.sleep(0.05)  # the bench polls the database for the workers' progress
        used = cpu(pids) - before
    last = done.aggregate(last=Max("processed_at"))["last"]
    assert last is not None and done.count() == events, "events lost"
    return events / (last.timestamp() - committed), used * 1000 / events


def change_to_viewer(port: int, *, viewers: int, rounds: int) -> list[float]:
    """ms from a rename's webhook POST to each viewer seeing it, every round together."""
    from bench import fanout

    # The first card of the seeded grid: every viewer's page shows it.
    product_id, price_id = "prod_bench000000", "price_bench000000"
    created = iter(range(int(time.time()) - 3600, int(time.time())))

    def rename(name: str) -> None:
        # A connection each: the server closes one kept idle across a round's wait.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = product_event(  # each newer than the last: applied, never stale
            "product.updated", f"evt_{time.time_ns()}", product_id, name, next(created), price_id
        )
        assert post(conn, body) == 200
        conn.close()

    result = fanout.run(port, rename, clients=viewers, rounds=rounds, gap=0.3)
    missing = sum(viewers - len(r.latencies) for r in result.rounds)
    if missing or result.connected < viewers:
        print(f"   {result.connected} connected; {missing} receipts missing", flush=True)
    return sorted(t for r in result.rounds for t in r.latencies)


def email_latency(port: int, mail_log: Path, *, rounds: int) -> list[float]:
    """ms from an order's commit (with its email queued) to the mail backend."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    committed: dict[str, float] = {}
    for _ in range(rounds):
        time.sleep(random.uniform(0, 0.3))  # a random gap: no poll can line up with it
        conn.request("GET", "/bench/order-email")
        order, at = conn.getresponse().read().decode().split()
        committed[f"Your Amazin order #{order}"] = float(at)
    conn.close()
    deadline = time.monotonic() + 60
    handed: dict[str, float] = {}
    while time.monotonic() < deadline and len(handed) < rounds:
        with suppress(FileNotFoundError):
            for line in mail_log.read_text().splitlines():
                subject, _, at = line.partition("\t")
                handed[subject] = float(at)
        time.sleep(0.05)
    return sorted((handed[s] - t) * 1000 for s, t in committed.items() if s in handed)


def statements_per_event(batch: int = 50) -> tuple[float, float]:
    """The statements of one event, counted here: the webhook's, then the worker's (a batch
    of `batch` events run by the worker in this process, divided)."""
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from payments.management.commands import shop_worker

    tag = secrets.token_hex(3)
    client = Client(HTTP_HOST="127.0.0.1")
    with CaptureQueriesContext(connection) as received:
        for i in range(batch):
            body = product_event("product.created", f"evt_sc{tag}{i}", f"prod_sc{tag}{i}", "S")
            payload = json.dumps(body).encode()
            response = client.post(
                "/stripe/webhook/",
                data=payload,
                content_type="application/json",
                headers={"Stripe-Signature": sign(payload)},
            )
            assert response.status_code == 200, response.content
    command = ["shop_worker", "--batch", "--no-periodic"]
    if "no-periodic" not in shop_worker.Command().create_parser("", "").format_help():
        command = ["db_worker", "--batch", "--no-startup-delay", "--no-reload"]  # 'before'
    with CaptureQueriesContext(connection) as worked:
        call_command(*command, verbosity=0)
    return len(received) / batch, len(worked) / batch


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--workers", default="1,2,4", help="shop_worker counts, in turn")
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20, help="renames, and emails")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--quick", action="store_true", help="500 events, 1 and 2 workers")
    parser.add_argument("--no-prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.workers, args.rounds = 500, "1,2", 10
    tmp = tempfile.TemporaryDirectory(prefix="amazin-bench-")
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp.name}/bench.sqlite3"
    postgres = database_url.startswith("postgres")
    mail_log = Path(tmp.name) / "mail.log"
    env = run.server_env(database_url) | {
        # Reconciliation reads Stripe's Events API: a closed port answers at once.
        "STRIPE_API_BASE": f"http://127.0.0.1:{run.free_port()}",
        "RECONCILE_EVERY_SECONDS": "3600",
        "BENCH_MAIL_LOG": str(mail_log),
    }
    if not args.no_prepare:
        run.prepare(env)
    run.seed_catalog(env, 12)
    os.environ.update(env)
    import django

    django.setup()
    db = "PostgreSQL" if postgres else "SQLite"
    load = os.getloadavg()
    print(f"== workers on {db}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    received, worked = statements_per_event()
    print(f"statements per event: webhook {received:.1f}, worker {worked:.1f}", flush=True)
    log = Path(tmp.name) / "workers.log"
    from scripts import serve

    default_workers = int(getattr(serve, "shop_workers", lambda **_: "1")(configured={}))
    counts = [int(n) for n in args.workers.split(",")]
    drained = [drain_rate(env, workers=n, events=args.events, log=log) for n in counts]
    rows = []
    with run.server(env, workers=run.serve_workers(postgres)) as served:
        for n in counts:
            result = applied_rate(
                env, served.pid, served.port, workers=n, events=args.events,
                senders=args.senders, log=log,
            )  # fmt: skip
            rows.append(result.row())
            print(" | ".join(rows[-1]), flush=True)
        latency: list[str] = []
        if not args.skip_latency:
            with ExitStack() as stack:
                stack.enter_context(shop_workers(env, default_workers, log))
                viewer = change_to_viewer(served.port, viewers=args.viewers, rounds=args.rounds)
                email = email_latency(served.port, mail_log, rounds=args.rounds)
            latency = [
                f"{statistics.median(viewer):.0f}" if viewer else "-",
                f"{percentile(viewer, 0.99):.0f}",
                f"{max(viewer, default=float('nan')):.0f}",
                f"{len(viewer)}/{args.viewers * args.rounds}",
                f"{statistics.median(email):.0f}" if email else "-",
                f"{max(email, default=float('nan')):.0f}",
                f"{len(email)}/{args.rounds}",
            ]
    run.table(
        f"Workers alone, {db}: {args.events:,} `product.created` queued in one commit, "
        "applied by the workers with the web server idle",
        ["shop_workers", "applied/s", "workers' CPU ms/event"],
        [
            [str(n), f"**{rate:.0f}**", f"{ms:.1f}"]
            for n, (rate, ms) in zip(counts, drained, strict=True)
        ],
    )
    run.table(
        f"Workers, {db}: {args.events:,} signed `product.created` from {args.senders} senders "
        "to `make serve`'s server; applied = first send to last `processed_at`",
        [
            "shop_workers",
            "events",
            "answered/s",
            "applied/s",
            "POST p50/p99 ms",
            "CPU ms/event: workers / web / PostgreSQL",
            "nothing lost",
        ],  # fmt: skip
        rows,
    )
    if latency:
        run.table(
            f"Latency, {db}, {default_workers} shop_worker(s): a webhook's rename to "
            f"{args.viewers} SSE viewers, and an order's commit to its email, {args.rounds} "
            "rounds at random gaps",
            ["viewer p50 ms", "p99", "max", "received", "email p50 ms", "max", "sent"],
            [latency],
        )
    if log.exists() and log.stat().st_size:
        print(f"\nworkers' output ({log.stat().st_size} bytes):")
        print(log.read_text()[-3000:])
    tmp.cleanup()


if __name__ == "__main__":
    main()
