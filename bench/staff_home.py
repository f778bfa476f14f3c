"""The staff home (the admin's index) at 100,000 orders: how long it takes to render.

    .venv/bin/python bench/staff_home.py                              # SQLite (a throwaway file)
    scripts/with-postgres.sh .venv/bin/python bench/staff_home.py     # PostgreSQL
    .venv/bin/python bench/staff_home.py --orders 10000 --rounds 20   # smaller, quicker

It migrates a fresh database, fills it as a year of trading leaves it (`--orders` orders
paid over 365 days, 90% in USD and 10% in EUR, most shipped, some refunded in part or in
full, abandoned checkouts among them; their refunds (a few pending, needing action or
failed), disputes of one paid order in 500 (some open, some lost), orders that need staff,
the books' differences, 2,000 products, 5,000 webhook events and a few waiting tasks), then
renders `GET /admin/` for a logged-in superuser with Django's
test client, in this process: the whole request (middleware, session, the home's queries,
the templates), `--rounds` times after 3 warm-up renders. It reports the median and the
slowest render and the number of queries. Target: under 50 ms. Not a test: a figure.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_MS = 50.0


def configure(database_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "ENV_FILE": os.devnull,
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "HTTPS": "0",
            "ALLOWED_HOSTS": "testserver",
            "SITE_URL": "http://127.0.0.1",
            "STRIPE_SECRET_KEY": "sk_test_bench",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench",
            "SILENCED_SYSTEM_CHECKS": "amazin.E001,amazin.E003",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    # WhiteNoise looks for collectstatic's folder; this bench serves no static file.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()


def fill(orders: int, seed: int) -> None:
    from django.utils import timezone
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult, get_date_max

    from payments.models import (
        BooksDifference,
        Dispute,
        Order,
        Refund,
        StripeCheckpoint,
        StripeEvent,
    )
    from payments.reconcile import CHECKPOINT
    from store.models import Price, Product

    rng = random.Random(seed)
    now = timezone.now()
    products = Product.objects.bulk_create(
        Product(
            stripe_id=f"prod_bench{n:06d}",
            name=f"Product {n}",
            active=n % 50 != 0,
            stock=rng.randint(0, 40),
        )
        for n in range(2000)
    )
    Price.objects.bulk_create(
        Price(stripe_id=f"price_bench{p.pk:06d}", product=p, unit_amount=1500, currency="usd")
        for p in products
    )
    statuses = (
        [Order.Status.PAID] * 80
        + [Order.Status.PARTIALLY_REFUNDED] * 5
        + [Order.Status.REFUNDED] * 3
        + [Order.Status.EXPIRED] * 8
        + [Order.Status.FAILED, Order.Status.PENDING, Order.Status.PROCESSING]
        + [Order.Status.REFUND_PENDING]
    )
    last_week = now - timedelta(days=7)
    batch: list[Order] = []
    for n in range(orders):
        status = rng.choice(statuses)
        at = now - timedelta(seconds=rng.uniform(0, 365 * 86_400))
        total = rng.randint(500, 30_000)
        is_paid = status in (*Order.PAID_STATUSES, Order.Status.REFUNDED)
        batch.append(
            Order(
                kind=Order.Kind.GOODS if n % 20 else Order.Kind.ACCESS,
                status=status,
                email=f"shopper{n}@example.com",
                currency="usd" if n % 10 else "eur",
                amount_total=total,
                amount_refunded={
                    Order.Status.PARTIALLY_REFUNDED: total // 3,
                    Order.Status.REFUNDED: total,
                }.get(status, 0),
                paid_at=at if is_paid else None,
                # Shipped the day after payment, except the last week's.
                shipped_at=at + timedelta(days=1) if is_paid and at < last_week else None,
                stripe_session_id=f"cs_bench{n:07d}",
                idempotency_token=f"{n:032x}",
            )
        )
        if len(batch) == 5000:
            Order.objects.bulk_create(batch)
            batch = []
    Order.objects.bulk_create(batch)
    refunded = Order.objects.filter(
        status__in=[Order.Status.PARTIALLY_REFUNDED, Order.Status.REFUNDED]
    ).values_list("pk", "amount_refunded", "currency")
    Refund.objects.bulk_create(
        (
            Refund(
                order_id=pk,
                amount=max(amount, 1),
                currency=currency,
                status={
                    0: Refund.Status.FAILED,
                    1: Refund.Status.PENDING,
                    2: Refund.Status.REQUIRES_ACTION,
                }.get(n % 100, Refund.Status.SUCCEEDED),
                stripe_refund_id=f"re_bench{n:07d}",
            )
            for n, (pk, amount, currency) in enumerate(refunded)
        ),
        batch_size=5000,
    )
    disputed = Order.objects.filter(status=Order.Status.PAID).values_list(
        "pk", "amount_total", "currency"
    )[::500]
    dispute_statuses = [
        Dispute.Status.NEEDS_RESPONSE,
        Dispute.Status.UNDER_REVIEW,
        Dispute.Status.WON,
        Dispute.Status.LOST,
    ]
    disputes = Dispute.objects.bulk_create(
        Dispute(
            order_id=pk,
            stripe_dispute_id=f"dp_bench{n:06d}",
            amount=amount,
            currency=currency,
            status=dispute_statuses[n % 4],
            opened_at=now - timedelta(days=n % 60),
        )
        for n, (pk, amount, currency) in enumerate(disputed)
    )
    for lost in disputes[3::4]:
        Order.objects.filter(pk=lost.order_id).update(amount_disputed=lost.amount)
    Order.objects.filter(pk__in=[d.order_id for d in disputes[::2]]).update(
        attention="Dispute opened"
    )
    BooksDifference.objects.bulk_create(
        BooksDifference(
            key=f"amount_differs:ch_bench{n:03d}",
            kind=BooksDifference.Kind.AMOUNT_DIFFERS,
            stripe_id=f"ch_bench{n:03d}",
            message="Amounts differ",
            object_created=now - timedelta(days=n),
            last_seen=now,
            resolved_at=now if n % 5 else None,
        )
        for n in range(50)
    )
    StripeEvent.objects.bulk_create(
        (
            StripeEvent(
                stripe_id=f"evt_bench{n:06d}",
                type="product.updated",
                payload={"id": f"evt_bench{n:06d}"},
                status=StripeEvent.Status.FAILED if n % 500 == 0 else StripeEvent.Status.PROCESSED,
            )
            for n in range(5000)
        ),
        batch_size=5000,
    )
    for _ in range(5):
        DBTaskResult.objects.create(
            status=TaskResultStatus.READY,
            run_after=get_date_max(),
            args_kwargs={"args": [], "kwargs": {}},
            task_path="payments.tasks.reservations_sweep_periodic",
            backend_name="default",
        )
    StripeCheckpoint.objects.create(name=CHECKPOINT, position=int(time.time()) - 200)


def measure(rounds: int) -> tuple[list[float], list[float], int]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    boss = User.objects.create_superuser("boss", "boss@example.com", "bench-password")
    client = Client()
    client.force_login(boss)
    plain_static = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=plain_static):  # no collectstatic manifest here
        for _ in range(3):
            assert client.get("/admin/").status_code == 200
        statements: list[str] = []

        def count(run: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            statements.append(sql)
            return run(sql, params, many, context)

        with connection.execute_wrapper(count):
            html = client.get("/admin/").content.decode()
        assert 'data-testid="staff-home"' in html, html[:2000]
        times, cpu = [], []
        for _ in range(rounds):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get("/admin/")
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status_code == 200
    return times, cpu, len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="amazin-bench-home-") as folder:
        database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{folder}/bench.sqlite3"
        configure(database_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        fill(args.orders, args.seed)
        filled = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum (PostgreSQL) or `optimize` would
        times, cpu, queries = measure(args.rounds)
        connection.close()

    median, slowest = statistics.median(times), max(times)
    p90 = statistics.quantiles(times, n=10)[-1]
    load = os.getloadavg()[0]
    print(f"database: {connection.vendor}; {args.orders:,} orders filled in {filled:.0f} s")
    print(
        f"GET /admin/ (staff home), {args.rounds} renders: median {median:.1f} ms, "
        f"p90 {p90:.1f} ms, slowest {slowest:.1f} ms; {queries} queries"
    )
    # On a shared machine the wall clock counts other work too: this process's CPU time
    # per render is the part that is the page's own (the database's too, on SQLite).
    print(f"this process's CPU per render: median {statistics.median(cpu):.1f} ms; load {load:.1f}")
    verdict = "met" if median < TARGET_MS else "NOT met"
    print(f"target: median render under {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
