"""Webhooks under load: 16 senders post signed Stripe events to `make serve`'s server
while a `shop_worker` applies them (PostgreSQL: the target is 400 events/s accepted).

    scripts/with-postgres.sh .venv/bin/python bench/webhooks.py
    scripts/with-postgres.sh .venv/bin/python bench/webhooks.py --senders 16 --seconds 10

`bench/run.py` runs it last (on PostgreSQL). What one run does:

- seeds `--products` products with prices (as bench/run.py does), with `whsec_bench` as
  the webhook secret;
- counts the statements of one event, in this process (Django's test client, then one task
  of the queue run here): the webhook's, and the worker's;
- starts the server (`bench.run.server`: granian, a worker per core) and one
  `python manage.py shop_worker`;
- `--senders` threads, each on a kept-alive connection, post `product.updated` and
  `price.updated` events for `--seconds`: event i is for product i mod N, and each object's
  `created` grows with every event for it (no same-second tie, so no re-read from Stripe);
- reports events/s answered 200, p50/p99 of the POST, how long the worker took to apply
  them all (from the first POST, and after the last), and checks that nothing was lost:
  every accepted event is recorded once and processed, and every product shows the values of
  the newest event accepted for it.

Stripe is never called: the worker's reconciliation points at a closed local port.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import run  # noqa: E402

PREFIX = "evt_bench_"
BASE_CREATED = int(time.time()) - 7200  # each object's events: BASE_CREATED + its round


def sign(payload: bytes, secret: str = run.SECRET) -> str:
    """`Stripe-Signature` exactly as Stripe makes it."""
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def bench_event(i: int, products: int) -> tuple[str, int, int, dict[str, Any]]:
    """Event number `i`: (its id, product index, round, body)."""
    index, rnd = i % products, i // products
    event_id = f"{PREFIX}{i:08d}"
    return event_id, index, rnd, event_body(index, rnd, event_id, BASE_CREATED + rnd)


def event_body(index: int, rnd: int, event_id: str, created: int) -> dict[str, Any]:
    """Even rounds rename product `index`, odd rounds re-price it, shaped like Stripe's
    (tests/fixtures/stripe)."""
    product_id, price_id = f"prod_bench{index:06d}", f"price_bench{index:06d}"
    if rnd % 2 == 0:
        kind = "product.updated"
        obj: dict[str, Any] = {
            "id": product_id,
            "object": "product",
            "active": True,
            "name": f"Bench product {index:06d} r{rnd}",
            "description": "A fine thing, " * 8,
            "images": [f"https://example.com/img/{index}.png"],
            "metadata": {"category": run.CATEGORIES[index % len(run.CATEGORIES)]},
            "default_price": price_id,
            "created": BASE_CREATED,
            "updated": created,
            "livemode": False,
        }
    else:
        kind = "price.updated"
        obj = {
            "id": price_id,
            "object": "price",
            "active": True,
            "currency": "usd",
            "product": product_id,
            "unit_amount": 1000 + rnd,
            "type": "one_time",
            "lookup_key": None,
            "recurring": None,
            "created": BASE_CREATED,
            "livemode": False,
            "metadata": {},
        }
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


class Senders:
    """`count` threads posting events until `deadline`, each on its own connection."""

    def __init__(self, port: int, *, count: int, products: int, seconds: float) -> None:
        self.port, self.count, self.products, self.seconds = port, count, products, seconds
        self.numbers = itertools.count()
        self.lock = threading.Lock()
        self.results: list[tuple[int, int, float]] = []  # (event number, status, seconds)

    def run(self) -> float:
        self.deadline = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self.send) for _ in range(self.count)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    def send(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        mine: list[tuple[int, int, float]] = []
        while time.monotonic() < self.deadline:
            i = next(self.numbers)
            payload = json.dumps(bench_event(i, self.products)[3]).encode()
            headers = {"Content-Type": "application/json", "Stripe-Signature": sign(payload)}
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/stripe/webhook/", body=payload, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                status = 0
            mine.append((i, status, time.perf_counter() - t0))
        conn.close()
        with self.lock:
            self.results.extend(mine)


def statements_per_event(products: int) -> tuple[int, int]:
    """The statements of one event, counted here: the webhook's, then the worker's."""
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    # Older than the run's events for the same product: the run's still apply after it.
    body = event_body(0, 0, f"evt_count_{time.time_ns()}", BASE_CREATED - 1)
    payload = json.dumps(body).encode()
    client = Client(HTTP_HOST="127.0.0.1")
    with CaptureQueriesContext(connection) as received:
        response = client.post(
            "/stripe/webhook/",
            data=payload,
            content_type="application/json",
            headers={"Stripe-Signature": sign(payload)},
        )
    assert response.status_code == 200, response.content
    with CaptureQueriesContext(connection) as worked:
        call_command("db_worker", batch=True, max_tasks=1, startup_delay=False, verbosity=0)
    return len(received), len(worked)


@contextmanager
def shop_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python manage.py shop_worker`, its output (a line per task) into `log`."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [run.PY, "manage.py", "shop_worker", "--interval", "0.05"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_processed(ids: list[str], timeout: float) -> tuple[bool, int]:
    """Wait until every one of `ids` is processed; (all done?, how many are)."""
    from payments.models import StripeEvent

    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = StripeEvent.objects.filter(
            stripe_id__startswith=PREFIX, status=StripeEvent.Status.PROCESSED
        ).count()
        if done >= len(ids):
            break
        time.sleep(0.1)  # polling the database for the worker's progress
    processed = set(
        StripeEvent.objects.filter(
            stripe_id__startswith=PREFIX, status=StripeEvent.Status.PROCESSED
        ).values_list("stripe_id", flat=True)
    )
    return set(ids) <= processed, len(set(ids) & processed)


def check_values(accepted: list[int], products: int) -> int:
    """Products whose name or price is not the newest accepted event's: should be 0."""
    from store.models import Product

    newest: dict[tuple[int, int], int] = {}  # (product, kind: 0 name, 1 price) -> round
    for i in accepted:
        index, rnd = i % products, i // products
        key = (index, rnd % 2)
        newest[key] = max(newest.get(key, -1), rnd)
    rows = {
        int(stripe_id[-6:]): (name, amount)
        for stripe_id, name, amount in Product.objects.filter(
            stripe_id__startswith="prod_bench"
        ).values_list("stripe_id", "name", "price__unit_amount")
    }
    wrong = 0
    for (index, kind), rnd in newest.items():
        name, amount = rows[index]
        if kind == 0 and name != f"Bench product {index:06d} r{rnd}":
            wrong += 1
        if kind == 1 and amount != 1000 + rnd:
            wrong += 1
    return wrong


def bench(env: dict[str, str], *, products: int, senders: int, seconds: float) -> list[str]:
    import django

    os.environ.update(env)
    django.setup()
    from payments.models import StripeEvent

    run.seed_catalog(env, products)
    StripeEvent.objects.filter(stripe_id__startswith=PREFIX).delete()
    received, worked = statements_per_event(products)
    print(f"statements for one event: webhook {received}, worker {worked}", flush=True)
    workers = os.cpu_count() or 2
    log = Path(tempfile.gettempdir()) / f"amazin-bench-worker-{os.getpid()}.log"
    with run.server(env, workers=workers) as served, shop_worker(env, log):
        group = Senders(served.port, count=senders, products=products, seconds=seconds)
        started = time.monotonic()
        elapsed = group.run()
        sent = time.monotonic()
        accepted = sorted(i for i, status, _ in group.results if status == 200)
        refused = len(group.results) - len(accepted)
        ids = [bench_event(i, products)[0] for i in accepted]
        complete, done = wait_processed(ids, timeout=600)
        applied = time.monotonic()
    recorded = StripeEvent.objects.filter(stripe_id__in=ids).count()
    wrong = check_values(accepted, products)
    latencies = sorted(t * 1000 for _, status, t in group.results if status == 200)
    p50 = statistics.median(latencies) if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    rate = len(accepted) / elapsed
    row = [
        f"{products:,}",
        str(senders),
        f"**{rate:.0f}**" + (" ✓" if rate >= 400 else " (<400)"),
        f"{p50:.1f}/{p99:.1f}",
        f"{received} + {worked}",
        f"{applied - started:.1f} ({applied - sent:.1f} after)",
        f"{len(accepted)} sent, {refused} refused, {recorded} recorded, {done} processed, "
        f"{wrong} wrong" + (" ✓" if complete and not refused and not wrong else " LOST"),
    ]
    print(" | ".join(row), flush=True)
    if not complete or refused or wrong:
        print(f"the worker's log: {log}", flush=True)
    else:
        log.unlink()
    return row


HEADER = [
    "products",
    "senders",
    "events/s (200)",
    "POST p50/p99 ms",
    "statements (webhook + worker)",
    "worker done s",
    "nothing lost",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="amazin-bench-")
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp.name}/bench.sqlite3"
    env = run.server_env(database_url) | {
        # Reconciliation reads Stripe's Events API: a closed port answers at once.
        "STRIPE_API_BASE": f"http://127.0.0.1:{run.free_port()}",
        "RECONCILE_EVERY_SECONDS": "3600",
    }
    if not args.no_prepare:
        run.prepare(env)
    row = bench(env, products=args.products, senders=args.senders, seconds=args.seconds)
    db = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    run.table(f"Webhooks, {db}: signed events from concurrent senders", HEADER, [row])
    tmp.cleanup()


if __name__ == "__main__":
    main()
