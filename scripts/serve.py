"""`make serve`: the shop as it runs in production, on one port.

One granian server with the ASGI interface and `amazin.live_asgi` (`live.asgi`): `/live/`
(Server-Sent Events) is served natively on each worker's event loop, every other path goes
straight to Django's WSGI handler (no Django ASGI request path); bodies over
`MAX_REQUEST_BODY_BYTES` are refused before they are read. Several worker processes: on
PostgreSQL LISTEN/NOTIFY carries changes between them, on SQLite a short log table that
each polls every 0.2 s (`live.channel.SQLiteLog`). Static files via WhiteNoise with
far-future cache headers (after collectstatic). Beside it, `SHOP_WORKERS` (two) background
workers (`manage.py shop_worker`). A process that dies is started again, with back-off
(scripts/supervise.py); Ctrl-C or SIGTERM stops them all. Configuration comes from the
environment and `.env`, as in production; `HTTPS` defaults to off here because this
serves plain http on a laptop.

    make serve                        # http://127.0.0.1:8000
    HOST=0.0.0.0 PORT=8080 WEB_CONCURRENCY=4 SHOP_WORKERS=4 make serve
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import subprocess
import sys
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.supervise import GaveUp, Supervisor, stop_on_signals  # noqa: E402

PY = sys.executable


def main() -> None:
    launched_with = dict(os.environ)
    # .env (or ENV_FILE) read exactly as the app reads it: the environment wins over the file.
    environ.Env.read_env(os.environ.get("ENV_FILE", ROOT / ".env"), overwrite=False)
    configured = dict(os.environ)
    env = dict(launched_with)
    env.setdefault("DEBUG", "0")
    env.setdefault("HTTPS", "0")
    env.setdefault("LIVE_GRID_CACHE", "1")
    if not configured.get("SECRET_KEY"):
        print("serve: no SECRET_KEY set; using a random one (sessions end on restart)")
        env["SECRET_KEY"] = secrets.token_urlsafe(50)
    host = env.get("HOST", "127.0.0.1")
    port = env.get("PORT", "8000")

    manage = [PY, "manage.py"]
    # migrate runs the system checks first: production refuses unsafe settings here.
    migrated = subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env)
    if migrated.returncode:
        raise SystemExit(
            "serve: refusing to start (see above). make serve runs as production: set "
            "STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET and SITE_URL in .env (.env.example)."
        )
    subprocess.run(
        [*manage, "collectstatic", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    postgres = configured.get("DATABASE_URL", "").startswith(("postgres", "pgsql"))
    workers = serve_workers(postgres=postgres, configured=env)
    raise_open_files_limit()

    shop_count = int(shop_workers(configured=configured))
    print(
        f"serve: http://{host}:{port}/  ({workers} web worker(s), {shop_count} shop_worker(s); "
        "Ctrl-C stops)",
        flush=True,
    )
    supervisor = Supervisor(cwd=ROOT, env=env)
    stop_on_signals(supervisor)
    try:
        # Emails, refunds, Stripe events, reconciliation and the reservation sweep.
        for n in range(shop_count):
            supervisor.start(f"shop_worker {n + 1}", [*manage, "shop_worker"])
        supervisor.start("granian", granian_command(host=host, port=port, workers=workers))
        supervisor.run()
    except GaveUp as exc:  # a taken port, a broken configuration: restarting will not help
        print(f"serve: giving up: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    finally:
        supervisor.stop()


def shop_workers(*, configured: dict[str, str]) -> str:
    """Background workers: `SHOP_WORKERS`, or two. Each applies Stripe's events, sends
    emails and makes refunds as they are committed; more apply more (bench/README.md,
    "Workers")."""
    return configured.get("SHOP_WORKERS") or "2"


def serve_workers(*, postgres: bool, configured: dict[str, str]) -> str:
    """Worker processes: `WEB_CONCURRENCY`, or one per core on PostgreSQL and two (one on a
    single core) on SQLite. On SQLite a change made in one worker reaches the other's
    viewers and caches within the 0.2 s poll of `live.Change`; two workers served 1.2-3x
    the requests of one on two cores, with no "database is locked" (bench/README.md). More
    than two writers on one SQLite file were not measured."""
    if configured.get("WEB_CONCURRENCY"):
        return configured["WEB_CONCURRENCY"]
    cores = os.cpu_count() or 2
    return str(cores if postgres else min(cores, 2))


def raise_open_files_limit() -> None:
    """Every open stream is a socket: lift the soft limit on descriptors (often 1,024) to
    the hard one, for granian and its workers, which inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # as before: the soft limit stays
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def granian_command(*, host: str, port: str, workers: str) -> list[str]:
    """The server as `make serve` runs it (tests start the same one).

    On SIGTERM or Ctrl-C each worker ends its open /live/ streams at once (live.asgi), so
    granian's graceful stop, which waits for open requests, takes about a second.

    `--backpressure` is how many requests a worker serves at once, and every open stream
    is one: at 4,096 (as it was) two workers held 8,192 streams and every request after
    that, pages included, waited in the backlog. So it is the descriptor limit, the real
    bound (a request holds a socket); pages still queue for the worker's page threads.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    backpressure = 4096 if soft == resource.RLIM_INFINITY else max(4096, soft)
    return [
        PY, "-m", "granian", "--interface", "asgi",
        "--host", host, "--port", port, "--workers", workers,
        "--no-ws", "--backlog", "4096", "--backpressure", str(backpressure),
        "--respawn-failed-workers", "--no-access-log",
        "amazin.live_asgi:application",
    ]  # fmt: skip


if __name__ == "__main__":
    main()
