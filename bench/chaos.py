"""Money under faults: a hundred purchases through the emulator's hosted Checkout page while
the emulator duplicates and reorders deliveries (--chaos) and never delivers three events in
ten (--drop 0.3), against make serve's server and the background worker.

At the end, whatever arrived and whatever did not: every paid session is exactly one paid
order, the stock taken is exactly the units paid for, nothing is oversold, and no order is
paid that Stripe did not take money for. Exits 1 if any of that is false.

    .venv/bin/python bench/chaos.py                     # SQLite, 100 purchases
    scripts/with-postgres.sh .venv/bin/python bench/chaos.py --purchases 100
    .venv/bin/python bench/chaos.py --purchases 20 --drop 0.5 --seed 7
    .venv/bin/python bench/chaos.py --money       # then refunds, disputes and the books
    .venv/bin/python bench/chaos.py --faults      # kill -9s, lost Stripe answers (chaos_faults)
    scripts/with-postgres.sh .venv/bin/python bench/chaos.py --faults   # + database restarts

Shoppers: one in ten pays with a declined card first, one in ten walks away from the payment
page, three in ten use the code WELCOME10, and half of those who pay never come back to the
success page (so only a webhook, or reconciliation, can tell the shop). A shopper whose request
fails (a web process killed under it) tries again, as a browser's user would, and one told
"try again in a moment" at checkout (Stripe failed) does, twice at most. When they are
done, the sessions left open are expired at Stripe (as Stripe does after 30 minutes), and the
run waits until nothing is left pending or refund_pending.

The shop runs as `make serve` runs it (scripts/supervise.py: granian and SHOP_WORKERS workers,
restarted if they die). With `--faults` (bench/chaos_faults.py) its processes are killed at
random moments, Stripe's answers are lost on their way back, and on PostgreSQL (a cluster of
the run's own, so that it can be restarted) the database restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SECRET = "whsec_chaos_run"
PAYS, DECLINED = "4242424242424242", "4000000000000002"
ADDRESS = {
    "shipping_name": "Kim Buyer",
    "shipping_line1": "1 Market Street",
    "shipping_city": "San Francisco",
    "shipping_postal_code": "94105",
    "shipping_country": "US",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up") from None
            time.sleep(0.2)


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] += 1


def patient(call: Callable[[], requests.Response]) -> requests.Response:
    """`call()` again while the shop is restarting a process (a connection cut, a 5xx)."""
    for attempt in range(8):
        try:
            response = call()
            if response.status_code < 500:
                return response
        except requests.ConnectionError:
            pass
        time.sleep(0.25 * (attempt + 1))  # a shopper pressing reload
    return call()


def shopper(n: int, shop: str, emulator: str, product_ids: list[int], tally: Tally) -> None:
    rng = random.Random(n)
    http = requests.Session()
    patient(lambda: http.get(f"{shop}/", timeout=30))
    headers = {"X-CSRFToken": http.cookies.get("csrftoken") or "", "Referer": f"{shop}/"}
    for product in rng.sample(product_ids, k=rng.choice([1, 1, 2])):
        line = {"product": product, "quantity": rng.choice([1, 1, 2])}
        patient(
            functools.partial(
                http.post, f"{shop}/cart/add/", data=line, headers=headers, timeout=30
            )
        )
    for _ in range(3):  # "Please try again in a moment": a shopper does, twice at most
        started = patient(
            lambda: http.post(
                f"{shop}/checkout/", headers=headers, allow_redirects=False, timeout=60
            )
        )
        location = started.headers.get("Location", "")
        if location.startswith(emulator):
            break
        time.sleep(0.5)
    else:
        tally.add("checkout refused (sold out, or Stripe failed 3 times)")
        return
    page = http.get(location, timeout=30).text
    session_id = location.rstrip("/").rsplit("/", 1)[-1]
    rates = re.findall(r"name='shipping_rate'[^>]*value='(shr_[^']+)'", page)
    form = {
        "email": f"shopper{n}@example.com",
        "method": "card",
        "expiry": "12 / 34",
        "cvc": "123",
        "name": f"Shopper {n}",
        **ADDRESS,
        "shipping_rate": rng.choice(rates) if rates else "",
        "promotion_code": "WELCOME10" if rng.random() < 0.3 else "",
    }
    roll = rng.random()
    if roll < 0.1:
        tally.add("walked away from the payment page")
        return
    if roll < 0.2:
        declined = http.post(
            f"{emulator}/pay/{session_id}", data=form | {"card": DECLINED}, timeout=30
        )
        assert declined.status_code == 402, declined.status_code
    paid = http.post(
        f"{emulator}/pay/{session_id}",
        data=form | {"card": PAYS},
        allow_redirects=False,
        timeout=30,
    )
    if paid.status_code != 303:
        tally.add(f"payment page answered {paid.status_code}")
        return
    if rng.random() < 0.5:
        patient(lambda: http.get(paid.headers["Location"], timeout=60))
        tally.add("paid, came back to the success page")
    else:
        tally.add("paid, never came back")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=100)
    parser.add_argument("--drop", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--settle-timeout", type=float, default=180)
    parser.add_argument(
        "--money",
        action="store_true",
        help="then staff refunds (some failing later), disputes, Stripe 500s, check_books "
        "(bench/chaos_money.py)",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        help="kill -9 of workers and web processes, lost Stripe answers and (PostgreSQL) "
        "database restarts at random moments (bench/chaos_faults.py)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from tests.support.fault_proxy import FaultProxy
    from tests.support.processes import PostgresCluster

    tmp = tempfile.TemporaryDirectory(prefix="amazin-chaos-")
    shop_port, emulator_port = free_port(), free_port()
    shop, emulator = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{emulator_port}"
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp.name}/shop.sqlite3"
    cluster = None
    if args.faults and database_url.startswith("postgres"):
        cluster = PostgresCluster()  # one the run may restart
        cluster.start()
        database_url = cluster.url
        print(f"--faults: PostgreSQL of the run's own on {cluster.url}", flush=True)
    # With --faults the shop talks to Stripe through a proxy that loses answers on purpose.
    proxy = FaultProxy(emulator).start() if args.faults else None
    if proxy is not None:  # requests cut by the faults (and at the end) are no news
        proxy.server.handle_error = lambda *_: None  # type: ignore[method-assign]
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "amazin.settings",
        "ENV_FILE": os.devnull,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "chaos-run-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": shop,
        "SILENCED_SYSTEM_CHECKS": "amazin.E003",  # a run on loopback, knowingly
        "STRIPE_SECRET_KEY": "sk_test_chaos_run",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_BASE": proxy.url if proxy else emulator,
        # Every shopper comes from 127.0.0.1: the per-address limits would stop the run.
        "CHECKOUT_STARTS_PER_MINUTE": "100000",
        "CHECKOUT_MAX_UNITS_PER_ADDRESS": "100000",
        "RECONCILE_EVERY_SECONDS": "3",
        "RECONCILE_GRACE_SECONDS": "2",
        "SWEEP_EVERY_SECONDS": "3",
        "LIVE_GRID_CACHE": "1",
        "MONEY_LOOK_EVERY_SECONDS": "3",
        "WORKER_LEASE_SECONDS": "5",
        "LOG_LEVEL": "WARNING",  # into the shop's log, kept if the run fails
        "PYTHONPATH": str(REPO),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Q

    from payments.models import Order, StripeEvent
    from scripts.serve import granian_command, shop_workers
    from scripts.supervise import Supervisor
    from store.models import Product

    manage = [PY, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=REPO, env=env, check=True)
    # As make serve does: with DEBUG off the pages (and seed_demo's pictures) need the manifest.
    subprocess.run(
        [*manage, "collectstatic", "--no-input", "-v", "0"], cwd=REPO, env=env, check=True
    )
    # The shop's own output (tracebacks of what the faults cut), kept if the run fails.
    shop_log = Path(tempfile.mkstemp(prefix="amazin-chaos-shop-", suffix=".log")[1])
    log_file = shop_log.open("ab")
    supervisor = Supervisor(  # the faults kill its children young on purpose: never give up
        cwd=REPO, env=env, prefix="chaos", output=log_file.fileno(), give_up_after=10**6
    )
    faults = None
    try:
        supervisor.start(
            "the Stripe emulator",
            [
                PY, "-m", "stripe_emulator", "--host", "127.0.0.1",
                "--port", str(emulator_port),
                "--forward-to", f"{shop}/stripe/webhook/", "--webhook-secret", SECRET,
                "--data", f"{tmp.name}/emulator.sqlite3",
                "--chaos", "--drop", str(args.drop), "--chaos-seed", str(args.seed),
                "--retry-base", "0.2", "--quiet",
            ],
        )  # fmt: skip
        wait_for(f"{emulator}/healthz")
        workers = "2" if connection.vendor == "postgresql" else "1"
        supervisor.start(
            "granian", granian_command(host="127.0.0.1", port=str(shop_port), workers=workers)
        )
        for n in range(int(shop_workers(configured=env))):
            supervisor.start(f"shop_worker {n + 1}", [*manage, "shop_worker", "--verbosity", "0"])
        wait_for(f"{shop}/healthz")
        subprocess.run(
            [*manage, "seed_demo"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL
        )
        # Catalog events were dropped too: reconciliation brings in what never arrived.
        deadline = time.monotonic() + 60
        while Product.objects.visible().count() < 12 and time.monotonic() < deadline:
            time.sleep(0.5)
        rng = random.Random(args.seed)
        products = list(Product.objects.visible().order_by("pk"))
        for product in products:  # scarce stock, so shoppers compete for the last units
            product.stock = rng.randint(4, 20)
            product.save(update_fields=["stock"])  # as staff would: published to the grid
        initial = dict(Product.objects.values_list("pk", "stock"))

        if args.money:
            from bench import chaos_money

            chaos_money.before_shopping(emulator)
        if proxy is not None:
            from bench.chaos_faults import Faults

            faults = Faults(supervisor=supervisor, proxy=proxy, cluster=cluster, seed=args.seed)
            faults.start()
        tally = Tally()
        began = time.monotonic()
        ids = [p.pk for p in products]
        with ThreadPoolExecutor(args.concurrency) as pool:
            for future in [
                pool.submit(shopper, n, shop, emulator, ids, tally) for n in range(args.purchases)
            ]:
                future.result()
        shopping = time.monotonic() - began

        import stripe

        client = stripe.StripeClient("sk_test_chaos_run", base_addresses={"api": emulator})
        sessions = list(client.v1.checkout.sessions.list(params={"limit": 100}).auto_paging_iter())
        for session in sessions:  # as Stripe does after 30 minutes
            if session.status == "open":
                client.v1.checkout.sessions.expire(session.id)
        paid_ids = {s.id for s in sessions if s.payment_status == "paid"}
        done = (Order.Status.PAID, Order.Status.REFUNDED)
        unsettled = Order.objects.filter(
            status__in=[Order.Status.PENDING, Order.Status.PROCESSING, Order.Status.REFUND_PENDING]
        ).exclude(  # a checkout whose session never reached the shop: its hold ends by the clock
            Q(stripe_session_id__isnull=True) | Q(stripe_session_id=""),
            status=Order.Status.PENDING,
        )
        deadline = time.monotonic() + args.settle_timeout
        while time.monotonic() < deadline:
            with database_back():
                settled = Order.objects.filter(stripe_session_id__in=paid_ids, status__in=done)
                if settled.count() == len(paid_ids) and not unsettled.exists():
                    break
            time.sleep(1)
        converged = time.monotonic() - began - shopping

        deliveries = requests.get(f"{emulator}/_emulator/deliveries", timeout=30).json()["data"]
        dropped = {d["event"] for d in deliveries if d["status"] == "dropped"}
        deadline = time.monotonic() + 60
        logged: set[str] = set()
        while True:  # the next reconciliation brings in the last dropped ones
            with database_back():
                logged = set(StripeEvent.objects.values_list("stripe_id", flat=True))
            if dropped <= logged or time.monotonic() > deadline:
                break
            time.sleep(1)
        if faults is not None:
            faults.restarts = False  # what follows is the bench's own reading and writing
        connection.close()  # the database may have restarted under this process too
        problems = [f"event {e} never reached the shop" for e in sorted(dropped - logged)]
        for session_id in paid_ids:
            orders = list(Order.objects.filter(stripe_session_id=session_id))
            if len(orders) != 1 or orders[0].status not in done:
                problems.append(f"paid session {session_id}: orders {orders!r}")
        for order in unsettled:
            problems.append(f"{order} is still {order.status}")
        sessionless = Order.objects.filter(
            Q(stripe_session_id__isnull=True) | Q(stripe_session_id=""), status=Order.Status.PENDING
        )
        for order in Order.objects.filter(status=Order.Status.PAID):
            if order.stripe_session_id not in paid_ids:
                problems.append(f"{order} is paid but Stripe took no money for it")
        taken: Counter[int] = Counter()
        for order in Order.objects.filter(status=Order.Status.PAID).prefetch_related("lines"):
            for line in order.lines.all():
                taken[line.product_id] += line.quantity
        for product in Product.objects.filter(pk__in=initial):
            if initial[product.pk] - product.stock != taken[product.pk]:
                problems.append(
                    f"{product}: stock {initial[product.pk]} -> {product.stock}, "
                    f"but {taken[product.pk]} paid for"
                )
            if product.stock < 0:
                problems.append(f"{product} oversold: stock {product.stock}")
        left = StripeEvent.objects.filter(
            status__in=[StripeEvent.Status.RECEIVED, StripeEvent.Status.PROCESSING]
        )
        problems += [f"event {e.stripe_id} left {e.status}" for e in left]
        money: list[str] = []
        if args.money and not problems:
            money, more = chaos_money.money_phase(
                emulator=emulator, env=env, seed=args.seed, timeout=args.settle_timeout
            )
            problems += more
        if faults is not None:
            faults.stop()
        # Every refund once: no order is refunded twice at Stripe (each is refunded at most
        # once in this run: unfillable, or by staff in --money), and each the shop shows as
        # refunded has its one refund there.
        refunded = (Order.Status.REFUNDED, Order.Status.PARTIALLY_REFUNDED)
        refunds_made = 0
        for order in Order.objects.exclude(stripe_payment_intent_id=""):
            made = client.v1.refunds.list(params={"payment_intent": order.stripe_payment_intent_id})
            refunds_made += len(made.data)
            if len(made.data) > 1 or (order.status in refunded and len(made.data) != 1):
                problems.append(f"{order} ({order.status}): {len(made.data)} refunds at Stripe")
        statuses = Counter(Order.objects.values_list("status", flat=True))

        flags = " --faults" if faults else ""
        print(f"\nchaos run: {args.purchases} shoppers, --chaos --drop {args.drop}{flags} "
              f"(seed {args.seed}), {connection.vendor}")  # fmt: skip
        for outcome, count in sorted(tally.outcomes.items()):
            print(f"  {outcome:<40} {count}")
        print(f"  {'sessions paid at Stripe':<40} {len(paid_ids)}")
        print(f"  {'orders by status':<40} {dict(sorted(statuses.items()))}")
        print(f"  {'events sent':<40} {len(deliveries)}")
        print(f"  {'  never delivered (dropped)':<40} {len(dropped)}")
        print(f"  {'  of those, in the shop log anyway':<40} {len(dropped & logged)}")
        print(f"  {'units paid for / stock taken':<40} {sum(taken.values())}")
        print(f"  {'refunds at Stripe (none twice)':<40} {refunds_made}")
        print(f"  {'shopping took':<40} {shopping:.1f} s")
        print(f"  {'all settled (none pending) after':<40} {converged:.1f} s more")
        print(f"  {'  pending with no session (hold to end)':<40} {sessionless.count()}")
        for said in [*(faults.summary() if faults else []), *money]:
            print(f"  {said}")
        if problems:
            print("\nFAILED:")
            for problem in problems[:50]:
                print(f"  {problem}")
            print(f"\nthe shop's output: {shop_log}")
            raise SystemExit(1)
        shop_log.unlink()
        print(
            "\nOK: every paid session is one paid order; every refund made once; stock taken ="
            " units paid; none oversold; nothing left pending"
        )
    finally:  # every step, whatever the one before it raised: nothing outlives the run
        steps = [
            faults.stop if faults is not None else None,
            supervisor.stop,
            log_file.close,
            proxy.stop if proxy is not None else None,
            cluster.stop if cluster is not None else None,
            tmp.cleanup,
        ]
        for step in steps:
            if step is not None:
                try:
                    step()
                except Exception as exc:
                    print(f"chaos: stopping: {exc!r}", file=sys.stderr)


@contextlib.contextmanager
def database_back() -> Iterator[None]:
    """A read of the bench's own that a database restart may cut: dropped, and tried again
    at the next turn of the caller's loop."""
    from django.db import DatabaseError, connection

    try:
        yield
    except DatabaseError:
        connection.close()


if __name__ == "__main__":
    main()
