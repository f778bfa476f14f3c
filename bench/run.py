"""`make bench`: the grid against a trivial view, and live fan-out to 1,000 SSE clients.

    .venv/bin/python bench/run.py                        # SQLite (a throwaway file)
    scripts/with-postgres.sh .venv/bin/python bench/run.py   # PostgreSQL (DATABASE_URL)

Servers bind 127.0.0.1 on free ports and are stopped at the end; every run is bounded
(wrk durations, client timeouts). Prints one table per part; bench/README.md has figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
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
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SECRET = "whsec_bench"
VISIBLE, ROWS = 48, 200  # as in ../shared/perf-reference.md


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str) -> dict[str, str]:
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LIVE_GRID_CACHE": "1",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        # A benchmark on loopback, with no Stripe key: knowingly not a production deployment.
        "SILENCED_SYSTEM_CHECKS": "amazin.E001,amazin.E003",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }


def prepare(env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [PY, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO, env=env, check=True
    )
    subprocess.run([PY, __file__, "--seed"], cwd=REPO, env=env, check=True)


def seed() -> None:
    import django

    django.setup()
    from store.models import Price, Product

    Product.objects.all().update(price=None)
    Price.objects.all().delete()
    Product.objects.all().delete()
    for i in range(ROWS):
        product = Product.objects.create(
            stripe_id=f"prod_bench{i:04d}",
            name=f"Bench product {i:03d}",
            description="A fine thing, " * 8,
            images=[f"https://example.com/img/{i}.png"],
            active=i < VISIBLE,
            stock=i % 12,
        )
        price = Price.objects.create(
            stripe_id=f"price_bench{i:04d}",
            product=product,
            unit_amount=1000 + i * 37,
            currency="usd",
        )
        product.price, product.default_price_stripe_id = price, price.stripe_id
        product.save(update_fields=["price", "default_price_stripe_id"])


@contextmanager
def server(env: dict[str, str], *args: str, workers: int = 2) -> Iterator[int]:
    port = free_port()
    cmd = [
        PY, "-m", "granian", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-ws", "--log-level", "warning", "--no-access-log",
        "--backlog", "4096", "--backpressure", "4096", *args,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {' '.join(cmd)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with suppress(ProcessLookupError):  # no worker outlives it, even if orphaned
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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


def wrk(url: str, *, seconds: int, connections: int = 32, cookie: str = "") -> dict[str, float]:
    exe = ensure_wrk()
    headers = ["-H", f"Cookie: {cookie}"] if cookie else []
    subprocess.run(
        [exe, "-t2", f"-c{connections}", "-d2s", *headers, url], capture_output=True, check=True
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


SERVERS = {
    "granian wsgi -w2 --blocking-threads 1 (pages only, no /live/)": (
        ["--interface", "wsgi", "--blocking-threads", "1", "amazin.wsgi:application"],
        {},
    ),
    "make serve: granian asgi -w2, live.asgi, pages on 2 threads": (
        ["--interface", "asgi", "amazin.live_asgi:application"],
        {"LIVE_ASGI_PAGE_THREADS": "2"},
    ),
    "granian asgi -w2, live.asgi, pages inline (LIVE_ASGI_PAGE_THREADS=0)": (
        ["--interface", "asgi", "amazin.live_asgi:application"],
        {"LIVE_ASGI_PAGE_THREADS": "0"},
    ),
    "granian asgi -w2, pages through a2wsgi's WSGIMiddleware, 2 threads (not used)": (
        ["--interface", "asgi", "bench.a2wsgi_app:application"],
        {"LIVE_ASGI_PAGE_THREADS": "2"},
    ),
}


def throughput(env: dict[str, str], *, seconds: int, only: str) -> list[list[str]]:
    rows = []
    for name, (args, extra) in SERVERS.items():
        if only and only not in name:
            continue
        with server(env | extra, *args) as port:
            base = f"http://127.0.0.1:{port}"
            hello = wrk(f"{base}/bench/hello", seconds=seconds)
            grid = wrk(f"{base}/", seconds=seconds)
            # A returning visitor: has a CSRF cookie, so no new secret is drawn for it.
            again = wrk(f"{base}/", seconds=seconds, cookie=f"csrftoken={'a1B2' * 8}")
            rows.append(
                [
                    name,
                    f"{hello['rps']:.0f} ({hello['p50']:.1f}/{hello['p99']:.1f})",
                    f"{grid['rps']:.0f} ({grid['p50']:.1f}/{grid['p99']:.1f})",
                    f"{grid['rps'] / hello['rps']:.0%}",
                    f"{again['rps']:.0f} ({again['p50']:.1f}/{again['p99']:.1f})",
                    f"{again['rps'] / hello['rps']:.0%}",
                    f"{hello['errors'] + grid['errors'] + again['errors']:.0f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    return rows


# -- fan-out ---------------------------------------------------------------------------------


def webhook_rename(port: int, stripe_id: str, price_id: str, name: str, created: int) -> None:
    event = {
        "id": f"evt_bench_{created}_{time.monotonic_ns()}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "type": "product.updated",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {
            "object": {
                "id": stripe_id,
                "object": "product",
                "active": True,
                "name": name,
                "description": "A fine thing, " * 8,
                "images": [],
                "metadata": {},
                "default_price": price_id,
                "created": 1_700_000_000,
                "updated": created,
                "livemode": False,
            }
        },
    }
    body = json.dumps(event).encode()
    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/stripe/webhook/",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={mac}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


async def _viewer(port: int, marker: bytes, limit: asyncio.Semaphore, state: dict, i: int) -> None:
    async with limit:  # connect in waves, not 1,000 SYNs at once
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /live/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        buffer = b""
        while b"retry:" not in buffer:  # sent once the server has subscribed this viewer
            chunk = await reader.read(65536)
            if not chunk:
                writer.close()
                return
            buffer += chunk
    try:
        state["connected"] += 1
        if state["connected"] == state["clients"]:
            state["ready"].set()
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buffer = buffer[-len(marker) :] + chunk
            if marker in buffer:
                state["done"][i] = time.time()
                return
    finally:
        writer.close()


async def fanout_async(viewer_port: int, publish, clients: int, timeout: float):
    marker = f"Renamed {time.monotonic_ns()}".encode()
    state: dict = {"connected": 0, "clients": clients, "ready": asyncio.Event(), "done": {}}
    limit = asyncio.Semaphore(100)
    tasks = [
        asyncio.create_task(_viewer(viewer_port, marker, limit, state, i)) for i in range(clients)
    ]
    with suppress(TimeoutError):
        await asyncio.wait_for(state["ready"].wait(), timeout)
    n_connected = state["connected"]
    t0 = time.time()
    await asyncio.to_thread(publish, marker.decode())
    t_committed = time.time()
    await asyncio.wait(tasks, timeout=timeout)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted((t - t0) * 1000 for t in state["done"].values())
    return n_connected, latencies, (t_committed - t0) * 1000


def fanout(viewer_port: int, publisher_port: int, clients: int, round_: int) -> list[str]:
    created = int(time.time()) + 10 * round_ + 10

    def publish(name: str) -> None:
        webhook_rename(publisher_port, "prod_bench0000", "price_bench0000", name, created)

    n, latencies, webhook_ms = asyncio.run(fanout_async(viewer_port, publish, clients, 30.0))
    if not latencies:
        return [str(n), "0", "-", "-", "-", f"{webhook_ms:.0f}"]
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return [
        str(n),
        str(len(latencies)),
        f"{p50:.0f}",
        f"{p99:.0f}",
        f"{latencies[-1]:.0f}",
        f"{webhook_ms:.0f}",
    ]


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per endpoint")
    parser.add_argument("--clients", type=int, default=1000, help="SSE clients")
    parser.add_argument("--only", default="", help="only servers whose name contains this")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-fanout", action="store_true")
    args = parser.parse_args()
    if args.seed:
        seed()
        return

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    tmp = tempfile.TemporaryDirectory(prefix="amazin-bench-")
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp.name}/bench.sqlite3"
    postgres = database_url.startswith("postgres")
    env = server_env(database_url)
    db = "PostgreSQL" if postgres else "SQLite"
    print(f"== Amazin bench on {db}, {os.cpu_count()} CPUs", flush=True)
    prepare(env)

    if not args.skip_throughput:
        print(f"\nwrk -t2 -c32 -d{args.seconds}s after 2 s warm-up", flush=True)
        rows = throughput(env, seconds=args.seconds, only=args.only)
        table(
            f"Grid vs trivial view, same server, {db} ({VISIBLE} cards of {ROWS} rows); "
            "req/s (p50/p99 ms)",
            [
                "server",
                "/bench/hello",
                "/ first visit",
                "ratio",
                "/ with CSRF cookie",
                "ratio",
                "non-2xx",
            ],
            rows,
        )

    if not args.skip_fanout:
        header = ["setup", "connected", "received", "p50 ms", "p99 ms", "max ms", "webhook ms"]
        rows = []
        app = ["--interface", "asgi", "amazin.live_asgi:application"]
        with server(env, *app, workers=1) as port:
            rows.append(["same process", *fanout(port, port, args.clients, 1)])
            print(" | ".join(rows[-1]), flush=True)
        if postgres:
            with server(env, *app, workers=1) as viewers, server(env, *app, workers=1) as pub:
                rows.append(
                    ["publisher in another process", *fanout(viewers, pub, args.clients, 2)]
                )
                print(" | ".join(rows[-1]), flush=True)
            with server(env, *app, workers=2) as port:
                rows.append(["make serve (2 workers)", *fanout(port, port, args.clients, 3)])
                print(" | ".join(rows[-1]), flush=True)
        table(
            f"Fan-out, {db}: {args.clients} SSE clients, one webhook renames a product; "
            "latency from sending the webhook to each client's receipt",
            header,
            rows,
        )
    tmp.cleanup()


if __name__ == "__main__":
    main()
