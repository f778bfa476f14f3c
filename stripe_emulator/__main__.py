"""``python -m stripe_emulator``: parse options, load state, serve until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from stripe_emulator.legacy import open_store
from stripe_emulator.server import Emulator, make_server
from stripe_emulator.webhooks import Deliverer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stripe_emulator",
        description="A local stand-in for the Stripe API, Checkout and webhooks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument(
        "--forward-to",
        default="http://127.0.0.1:8000/stripe/webhook/",
        help='webhook endpoint; "" turns delivery off',
    )
    parser.add_argument("--webhook-secret", default="whsec_amazin_emulator_secret")
    parser.add_argument("--data", type=Path, default=Path(".stripe_emulator.sqlite3"))
    parser.add_argument("--public-url", default="", help="base of Checkout URLs")
    parser.add_argument(
        "--retry-schedule",
        choices=("stripe", "fast"),
        default=None,
        help="stripe: as Stripe's test mode, 3 retries over hours (the default); fast: "
        "retry-base * 2^n seconds up to max-attempts (the default when either is given)",
    )
    parser.add_argument("--retry-base", type=float, default=None, help="fast: first delay (s)")
    parser.add_argument("--max-attempts", type=int, default=None, help="fast: attempts in all")
    parser.add_argument("--delivery-timeout", type=float, default=10.0)
    parser.add_argument("--chaos", action="store_true", help="duplicate and reorder deliveries")
    parser.add_argument("--chaos-seed", type=int, default=0, help="seed of --chaos and --drop")
    parser.add_argument(
        "--drop",
        type=_rate,
        default=0.0,
        metavar="RATE",
        help="never deliver this fraction (0-1) of events; recorded as dropped, not retried",
    )
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument(
        "--record",
        type=Path,
        default=os.environ.get("STRIPE_EMULATOR_RECORD") or None,
        metavar="FILE",
        help="append every /v1 request to FILE as a JSON line (default: "
        "$STRIPE_EMULATOR_RECORD); `python -m stripe_emulator.schema FILE` checks them",
    )
    return parser.parse_args(argv)


def _rate(text: str) -> float:
    rate = float(text)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("a rate between 0 and 1")
    return rate


def _terminate(signum: int, frame: object) -> NoReturn:
    # Turn SIGTERM into a normal exit so the finally block below runs.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    store = open_store(args.data)
    deliverer = Deliverer(
        store,
        forward_to=args.forward_to,
        secret=args.webhook_secret,
        retry_schedule=args.retry_schedule
        or ("fast" if args.retry_base is not None or args.max_attempts is not None else "stripe"),
        retry_base=0.5 if args.retry_base is None else args.retry_base,
        max_attempts=8 if args.max_attempts is None else args.max_attempts,
        timeout=args.delivery_timeout,
        chaos=args.chaos,
        chaos_seed=args.chaos_seed,
        drop=args.drop,
    )
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    emulator = Emulator(
        store, deliverer, public_url=public_url, quiet=args.quiet, record=args.record
    )
    server = make_server(emulator, args.host, args.port)
    port = server.server_address[1]
    if not args.public_url:
        emulator.api.checkout.public_url = f"http://{args.host}:{port}"
    base = f"http://{args.host}:{port}"
    forward = args.forward_to or "nowhere (delivery off)"
    print(
        f"Stripe emulator: API {base}/v1  dashboard {base}/  webhooks -> {forward}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _terminate)
    emulator.start_background()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop_background()
        server.server_close()
        store.close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
