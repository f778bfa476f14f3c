"""`make bench`: every kind of visitor against a trivial view, at three catalog sizes, with
and without a catalog change a second; live fan-out to 10,000 SSE clients; the background
workers (bench/webhooks.py): signed webhooks from 16 senders applied by 1, 2 and 4 workers,
a webhook's change to SSE viewers on other processes, an order's commit to its email; on
SQLite, the Stripe emulator's calls as it fills to 100,000 objects (bench/emulator.py).

    .venv/bin/python bench/run.py                        # SQLite (a throwaway file)
    scripts/with-postgres.sh .venv/bin/python bench/run.py   # PostgreSQL (DATABASE_URL)
    .venv/bin/python bench/run.py --quick                # about 2 minutes

The server is `make serve`'s (`scripts.serve.granian_command`: granian, `live.asgi`, two
workers on SQLite, one per core on PostgreSQL; `--workers 1,2` compares) with
`bench.settings`, which adds the trivial view `/bench/hello` and `/bench/change` (one
catalog change made in the server, as the store's services make it). Each target is
measured as wrk's req/s divided by the trivial view's in the same round, interleaved; the
median of the rounds is reported.

Servers bind 127.0.0.1 on free ports and are stopped at the end; every run is bounded
(wrk durations, client timeouts). bench/README.md has figures.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable
SECRET = "whsec_bench"
CATEGORIES = ["Cookware", "Tableware", "Tea & Coffee", "Storage", "Linen", "Garden"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str) -> dict[str, str]:
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "ENV_FILE": "/dev/null",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LIVE_GRID_CACHE": "1",
        "SITE_URL": "http://127.0.0.1",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        # A benchmark on loopback: knowingly not a production deployment.
        "SILENCED_SYSTEM_CHECKS": "amazin.E001,amazin.E003",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }


def prepare(env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [PY, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO, env=env, check=True
    )


def seed_catalog(env: dict[str, str], size: int) -> None:
    subprocess.run([PY, __file__, "--seed", str(size)], cwd=REPO, env=env, check=True)


def seed(size: int) -> None:
    """`size` visible products with prices and stock, by bulk_create (100,000 in seconds)."""
    import django

    django.setup()
    from django.db import connection, transaction

    from cart.models import Cart
    from store.models import Price, Product, Reservation

    fields = {f.name for f in Product._meta.get_fields()}
    with transaction.atomic():
        Cart.objects.all().delete()
        Reservation.objects.all().delete()
        Product.objects.all().update(price=None)
        Price.objects.all().delete()
        Product.objects.all().delete()
        batch = 5000
        for start in range(0, size, batch):
            rows = []
            for i in range(start, min(size, start + batch)):
                extra = {}
                if "category" in fields:  # also runs against code from before categories
                    category = CATEGORIES[i % len(CATEGORIES)]
                    extra = {"category": category, "category_slug": slugify(category)}
                rows.append(
                    Product(
                        stripe_id=f"prod_bench{i:06d}",
                        name=f"Bench product {i:06d}",
                        description="A fine thing, " * 8,
                        images=[f"https://example.com/img/{i}.png"],
                        active=True,
                        stock=3 + i % 12,
                        default_price_stripe_id=f"price_bench{i:06d}",
                        **extra,
                    )
                )
            products = Product.objects.bulk_create(rows)
            if not products[0].pk:  # SQLite before RETURNING: read the ids back
                products = list(
                    Product.objects.filter(stripe_id__in=[p.stripe_id for p in rows]).order_by(
                        "stripe_id"
                    )
                )
            prices = Price.objects.bulk_create(
                Price(
                    stripe_id=p.default_price_stripe_id,
                    product=p,
                    unit_amount=1000 + (int(p.stripe_id[-6:]) * 37) % 9000,
                    currency="usd",
                )
                for p in products
            )
            for product, price in zip(products, prices, strict=True):
                product.price = price
            Product.objects.bulk_update(products, ["price"], batch_size=1000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def slugify(text: str) -> str:
    from django.utils.text import slugify as django_slugify

    return django_slugify(text)


def serve_workers(postgres: bool) -> int:
    """As `make serve` chooses, with no WEB_CONCURRENCY."""
    from scripts.serve import serve_workers

    return int(serve_workers(postgres=postgres, configured={}))


@dataclass
class Server:
    port: int
    pid: int  # granian's supervisor; its workers are its children


@contextmanager
def server(env: dict[str, str], *, workers: int) -> Iterator[Server]:
    from scripts.serve import granian_command

    port = free_port()
    cmd = granian_command(host="127.0.0.1", port=str(port), workers=str(workers))
    cmd = [*cmd[:-1], "--log-level", "warning", cmd[-1]]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {' '.join(cmd)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/hello", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        yield Server(port, proc.pid)
    finally:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with suppress(ProcessLookupError):  # no worker outlives it, even if orphaned
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- visitors --------------------------------------------------------------------------------


def returning_shopper(base: str, product_ids: list[int]) -> str:
    """The Cookie header of a session that added 3 products through the site's own forms."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/", timeout=30).read()
    for pk in product_ids[:3]:
        token = next(c.value for c in jar if c.name == "csrftoken")
        body = urllib.parse.urlencode(
            {"product": pk, "quantity": 1, "csrfmiddlewaretoken": token}
        ).encode()
        request = urllib.request.Request(
            f"{base}/cart/add/", data=body, headers={"Referer": f"{base}/"}
        )
        opener.open(request, timeout=30).read()
    opener.open(f"{base}/", timeout=30).read()  # shows (and so clears) the flash message
    cookies = {c.name: c.value for c in jar if c.value}
    assert {"sessionid", "csrftoken"} <= cookies.keys(), cookies
    return "; ".join(f"{name}={cookies[name]}" for name in ("sessionid", "csrftoken"))


def first_page_ids(base: str) -> list[int]:
    with urllib.request.urlopen(f"{base}/", timeout=60) as response:
        html = response.read().decode()
    return [int(pk) for pk in re.findall(r'data-product="(\d+)"', html)]


class Changes:
    """One catalog change a second, in the server (`/bench/change`), in a thread: stock
    changes and reservations that come and go, on the cards of the first page."""

    def __init__(self, base: str, ids: list[int]) -> None:
        self.base, self.ids = base, ids
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            pk = self.ids[self.count % len(self.ids)]
            kind = "stock" if self.count % 2 else "reserve"
            with suppress(OSError):
                urllib.request.urlopen(
                    f"{self.base}/bench/change?pk={pk}&kind={kind}", timeout=10
                ).read()
                self.count += 1

    def __enter__(self) -> Changes:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


# -- throughput ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    print("installing wrk (Debian package)...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=False)
    if not shutil.which("wrk"):
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    url: str, *, seconds: int, warmup: int = 1, connections: int = 32, cookie: str = ""
) -> dict[str, float]:
    exe = ensure_wrk()
    headers = ["-H", f"Cookie: {cookie}"] if cookie else []
    if warmup:
        subprocess.run(
            [exe, "-t2", f"-c{connections}", f"-d{warmup}s", *headers, url],
            capture_output=True,
            check=True,
        )
    out = subprocess.run(
        [exe, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *headers, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "errors": float(errors.group(1)) if errors else 0.0,
    }


TARGETS = {
    # name: (path, returning shopper?, also under a change a second?, target ratio)
    "grid, first visit": ("/", False, True, 0.50),
    "grid, returning shopper": ("/", True, True, 0.50),
    "product page, returning shopper": ("/products/{pk}/", True, False, 0.40),
    "cart (3 items), returning shopper": ("/cart/", True, False, 0.25),
}


def measure(
    bases: dict[str, str], *, cookie: str, pk: int, ids: list[int], rounds: int, seconds: int,
    only: str, changing: bool,
) -> list[list[str]]:  # fmt: skip
    """Each target against the trivial view, interleaved, `rounds` times, on each server in
    `bases` (label: url) in turn within each round; median ratio."""
    Runs = list[tuple[dict[str, float], dict[str, float]]]
    results: dict[tuple[str, str], Runs] = {}
    for _ in range(rounds):
        for label, base in bases.items():
            with Changes(base, ids) if changing else nullcontext():
                for name, (path, returning, under_change, _goal) in TARGETS.items():
                    if (only and only not in name) or (changing and not under_change):
                        continue
                    hello = wrk(f"{base}/bench/hello", seconds=seconds)
                    page = wrk(
                        base + path.format(pk=pk),
                        seconds=seconds,
                        cookie=cookie if returning else "",
                    )
                    results.setdefault((label, name), []).append((hello, page))
    rows = []
    for (label, name), runs in results.items():
        ratios = [page["rps"] / hello["rps"] for hello, page in runs]
        ratio = statistics.median(ratios)
        mid = sorted(runs, key=lambda r: r[1]["rps"] / r[0]["rps"])[len(runs) // 2]
        hello, page = mid
        goal = TARGETS[name][3]
        rows.append(
            [
                name
                + (f", {label}" if len(bases) > 1 else "")
                + (", 1 change/s" if changing else ""),
                f"{hello['rps']:.0f}",
                f"{page['rps']:.0f} ({page['p50']:.1f}/{page['p99']:.1f})",
                f"**{ratio:.0%}**" + (" ✓" if ratio >= goal else f" (<{goal:.0%})"),
                " ".join(f"{r:.0%}" for r in ratios),
                f"{sum(p['errors'] for _, p in runs):.0f}",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


def throughput(
    env: dict[str, str], *, workers: list[int], sizes: list[int], rounds: int, seconds: int,
    only: str, changes: bool,
) -> list[list[str]]:  # fmt: skip
    """Each size on a server per worker count (`make serve`'s choice, or several to compare,
    measured in turn within each round)."""
    rows = []
    for size in sizes:
        t0 = time.monotonic()
        seed_catalog(env, size)
        print(f"-- {size:,} products (seeded in {time.monotonic() - t0:.0f} s)", flush=True)
        with ExitStack() as stack:
            bases = {}
            for n in workers:
                running = stack.enter_context(server(env, workers=n))
                bases[f"{n} worker{'s' if n > 1 else ''}"] = f"http://127.0.0.1:{running.port}"
            first = next(iter(bases.values()))
            ids = first_page_ids(first)
            args: dict[str, Any] = {
                "cookie": returning_shopper(first, ids),  # a session any worker can read
                "pk": ids[3],
                "ids": ids,
                "rounds": rounds,
                "seconds": seconds,
                "only": only,
            }
            for row in measure(bases, **args, changing=False):
                rows.append([f"{size:,}", *row])
            if changes:
                for row in measure(bases, **args, changing=True):
                    rows.append([f"{size:,}", *row])
    return rows


# -- fan-out (bench/fanout.py) ----------------------------------------------------------------


def change_name(port: int, pk: int, name: str) -> None:
    """Rename a product in the server at `port` (committed, then published)."""
    url = f"http://127.0.0.1:{port}/bench/change?" + urllib.parse.urlencode(
        {"pk": pk, "name": name}
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, response.status


def live_fanout(
    env: dict[str, str], *, postgres: bool, workers: int, clients: int, rounds: int
) -> None:
    from bench import fanout

    db = "PostgreSQL" if postgres else "SQLite"
    seed_catalog(env, 48)
    with server(env, workers=workers) as running:
        pk = first_page_ids(f"http://127.0.0.1:{running.port}")[0]
        result = fanout.run(
            running.port,
            lambda name: change_name(running.port, pk, name),
            clients=clients,
            rounds=rounds,
            server_pid=running.pid,
        )
    memory = (
        f"{result.rss_per_stream / 1024:.1f} KiB"
        if result.rss_per_stream is not None
        else "not measured"
    )
    print(
        f"{result.connected} of {clients} connected in {result.connect_seconds:.0f} s; "
        f"server memory per stream {memory}; streams per worker (open fds gained) "
        f"{result.fds_per_worker}",
        flush=True,
    )
    table(
        f"Fan-out, {db}, `make serve` ({workers} worker(s)): {clients} SSE clients, "
        "each change renames a product; ms from the change request to each client's receipt",
        [
            "change",
            "connected",
            "received",
            "p50 ms",
            "p99 ms",
            "max ms",
            "change ms",
            "server CPU ms",
        ],
        [[str(i + 1), *r.row(result.connected)] for i, r in enumerate(result.rounds)],
    )


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="12,2000,100000", help="catalog sizes")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per measurement")
    parser.add_argument("--clients", type=int, default=10_000, help="SSE clients (live fan-out)")
    parser.add_argument("--fanout-rounds", type=int, default=3, help="changes sent to them")
    parser.add_argument(
        "--workers", help="granian workers, e.g. 1,2 to compare (default: as `make serve`)"
    )
    parser.add_argument("--only", default="", help="only targets whose name contains this")
    parser.add_argument("--no-changes", action="store_true", help="skip the change-a-second runs")
    parser.add_argument("--quick", action="store_true", help="12 and 2,000 products, 1 round")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-fanout", action="store_true")
    parser.add_argument("--skip-webhooks", action="store_true")
    parser.add_argument("--skip-emulator", action="store_true")
    args = parser.parse_args()
    if args.seed is not None:
        seed(args.seed)
        return
    if args.quick:
        args.sizes, args.rounds, args.seconds = "12,2000", 1, 2

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    tmp = tempfile.TemporaryDirectory(prefix="amazin-bench-")
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp.name}/bench.sqlite3"
    postgres = database_url.startswith("postgres")
    env = server_env(database_url)
    db = "PostgreSQL" if postgres else "SQLite"
    started = time.monotonic()
    workers = (
        [int(n) for n in args.workers.split(",")] if args.workers else [serve_workers(postgres)]
    )
    print(f"== Amazin bench on {db}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    prepare(env)

    if not args.skip_throughput:
        sizes = [int(size) for size in args.sizes.split(",")]
        print(
            f"wrk -t2 -c32 -d{args.seconds}s after 1 s warm-up, {args.rounds} round(s)",
            flush=True,
        )
        rows = throughput(
            env, workers=workers, sizes=sizes, rounds=args.rounds, seconds=args.seconds,
            only=args.only, changes=not args.no_changes,
        )  # fmt: skip
        table(
            f"Pages vs the trivial view, same `make serve` server, {db}; "
            "req/s (p50/p99 ms), ratio = median of the rounds",
            ["products", "page", "/bench/hello", "page req/s", "ratio", "rounds", "non-2xx"],
            rows,
        )

    if not args.skip_fanout:
        for n in workers:
            live_fanout(
                env, postgres=postgres, workers=n, clients=args.clients, rounds=args.fanout_rounds
            )
    if not args.skip_webhooks:  # the background workers: bench/webhooks.py
        print("\nThe workers (bench/webhooks.py): applied events/s, change to viewer, email")
        subprocess.run(
            [PY, str(REPO / "bench" / "webhooks.py"), "--no-prepare"]
            + (["--quick"] if args.quick else []),
            cwd=REPO,
            env=os.environ | {"DATABASE_URL": database_url},
            check=True,
        )
    if not args.skip_emulator and not postgres:  # its store is its own: once is enough
        print("\nThe Stripe emulator as it fills (bench/emulator.py): p50/p99 per call", flush=True)
        subprocess.run([PY, str(REPO / "bench" / "emulator.py")], cwd=REPO, check=True)
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
