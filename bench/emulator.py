"""How fast the Stripe emulator answers as it fills up.

    .venv/bin/python bench/emulator.py                          # 0, 1k, 10k, 100k objects
    .venv/bin/python bench/emulator.py --levels 0 800 1200 --samples 50

Starts the emulator (webhook delivery off) on a free 127.0.0.1 port with a
throwaway data file, fills it over HTTP with Checkout Sessions (one stored
object each) up to each level in turn, and at each level times a sample of
calls over a kept-alive connection, as the SDK makes them: create a session,
retrieve one, list sessions, create a product (which also records an event),
list events, list a product's prices. Prints p50/p99 in milliseconds per
call and level. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.emulator import API_KEY, running_emulator  # noqa: E402

HEADERS = {
    "Authorization": f"Bearer {API_KEY}",
    "Content-Type": "application/x-www-form-urlencoded",
}


class Client:
    """One kept-alive HTTP connection to the emulator."""

    def __init__(self, base: str) -> None:
        url = urllib.parse.urlsplit(base)
        assert url.hostname is not None  # base is a full http:// URL
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

    def call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        body = urllib.parse.urlencode(params or {})
        if method == "GET" and body:
            path, body = f"{path}?{body}", ""
        self.conn.request(method, path, body=body or None, headers=HEADERS)
        response = self.conn.getresponse()
        data = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data}")
        return data


def session_params(price_id: str) -> dict[str, Any]:
    return {
        "mode": "payment",
        "line_items[0][price]": price_id,
        "line_items[0][quantity]": "1",
        "success_url": "http://127.0.0.1:8000/checkout/success/?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:8000/checkout/cancel/",
    }


def fill(base: str, price_id: str, count: int, threads: int) -> None:
    """Create `count` Checkout Sessions over `threads` connections."""
    share = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]

    def work(n: int) -> None:
        client = Client(base)
        for _ in range(n):
            client.call("POST", "/v1/checkout/sessions", session_params(price_id))

    workers = [threading.Thread(target=work, args=(n,)) for n in share if n]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def timed(samples: int, call: Callable[[int], Any]) -> tuple[float, float]:
    durations = []
    for i in range(samples):
        started = time.perf_counter()
        call(i)
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p99 = durations[min(len(durations) - 1, round(0.99 * (len(durations) - 1)))]
    return statistics.median(durations), p99


def measure(client: Client, price_id: str, product_id: str, samples: int) -> dict[str, Any]:
    created: list[str] = []

    def create_session(i: int) -> None:
        created.append(client.call("POST", "/v1/checkout/sessions", session_params(price_id))["id"])

    calls: dict[str, Callable[[int], Any]] = {
        "create session": create_session,
        "retrieve session": lambda i: client.call(
            "GET", f"/v1/checkout/sessions/{created[i % len(created)]}"
        ),
        "list sessions": lambda i: client.call("GET", "/v1/checkout/sessions", {"limit": 10}),
        "create product": lambda i: client.call("POST", "/v1/products", {"name": f"P{i}"}),
        "list events": lambda i: client.call("GET", "/v1/events", {"limit": 10}),
        "list prices of a product": lambda i: client.call(
            "GET", "/v1/prices", {"product": product_id, "limit": 10}
        ),
    }
    return {name: timed(samples, call) for name, call in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1_000, 10_000, 100_000])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4, help="connections used to fill")
    args = parser.parse_args()

    with running_emulator() as emulator:
        client = Client(emulator.api_base)
        price = client.call(
            "POST",
            "/v1/prices",
            {"unit_amount": 1500, "currency": "usd", "product_data[name]": "Mug"},
        )
        # Objects so far: the price, its product and their two events.
        stored = 4
        rows = []
        for level in sorted(args.levels):
            if level > stored:
                started = time.perf_counter()
                fill(emulator.api_base, price["id"], level - stored, args.threads)
                rate = (level - stored) / (time.perf_counter() - started)
                print(f"filled to {level:,} objects ({rate:,.0f} creates/s)", flush=True)
                stored = level
            results = measure(client, price["id"], price["product"], args.samples)
            # Each sample round adds sessions, products and product events.
            stored += 3 * args.samples
            rows.append((level, results))
            for name, (p50, p99) in results.items():
                print(f"  {level:>7,}  {name:<26} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms", flush=True)
        size = emulator.data_file.stat().st_size if emulator.data_file.exists() else 0
        print(f"data file: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
