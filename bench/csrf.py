"""What `store.csrf` saves: the cached grid page with its token against Django's `get_token`.

    .venv/bin/python bench/csrf.py [--products 12] [--rounds 25] [--batch 200]

One process, Django's WSGI handler (every middleware, as `make serve` calls it), the
production settings of `bench/run.py` on a throwaway SQLite file. For a stranger and for a
returning shopper (3 products in the cart through the site's forms, header memoised), the
same cached page is timed in batches with each token function in turn, the order swapped
every round; the saving is taken pair by pair, and the median printed with its spread.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()

    from bench.run import seed, server_env

    database = Path(tempfile.mkdtemp()) / "csrf.sqlite3"
    os.environ.update(server_env(f"sqlite:///{database}"))
    os.environ["ALLOWED_HOSTS"] += ",testserver"
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.middleware.csrf import get_token
    from django.test import Client

    from store import csrf
    from store.models import Product

    call_command("migrate", verbosity=0)
    seed(args.products)
    shopper = Client()
    shopper.get("/")
    for pk in Product.objects.values_list("pk", flat=True)[:3]:
        token = shopper.cookies["csrftoken"].value
        shopper.post("/cart/add/", {"product": pk, "quantity": 1, "csrfmiddlewaretoken": token})
    shopper.get("/")  # shows (and so clears) the flash message
    cookies = shopper.cookies
    visitors = {
        "grid, first visit": "",
        "grid, returning shopper": "; ".join(
            f"{name}={cookies[name].value}" for name in ("sessionid", "csrftoken")
        ),
    }

    app = WSGIHandler()

    def get(cookie: str) -> bytes:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "HTTP_COOKIE": cookie,
        }  # fmt: skip

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            assert status.startswith("200"), status

        return b"".join(app(environ, start_response))

    def per_page(cookie: str, draw: Callable[[Any], str]) -> float:
        csrf.token = draw  # type: ignore[assignment]  # what serve_page calls
        started = time.perf_counter()
        for _ in range(args.batch):
            get(cookie)
        return (time.perf_counter() - started) / args.batch

    fast = csrf.token
    print(f"{args.products} products, {args.rounds} rounds of {args.batch} pages each way")
    for name, cookie in visitors.items():
        for _ in range(args.batch):
            assert b"csrfmiddlewaretoken" in get(cookie)  # warm: cached page, memo
        pairs = []
        for n in range(args.rounds):
            ways = [("fast", fast), ("django", get_token)]
            timed = {way: per_page(cookie, draw) for way, draw in ways[:: 1 if n % 2 else -1]}
            pairs.append((timed["fast"], timed["django"]))
        csrf.token = fast
        saving = sorted((django_ - fast_) / django_ for fast_, django_ in pairs)
        fast_us = statistics.median(p[0] for p in pairs) * 1e6
        django_us = statistics.median(p[1] for p in pairs) * 1e6
        quartiles = statistics.quantiles(saving, n=4)
        print(
            f"{name}: {fast_us:.0f} us a page with store.csrf, {django_us:.0f} us with"
            f" get_token; saving {statistics.median(saving):.1%} of the page"
            f" (quartiles {quartiles[0]:.1%}-{quartiles[2]:.1%})"
        )


if __name__ == "__main__":
    main()
