"""`make serve`: the shop as it runs in production, on one port.

One granian server with the ASGI interface and `amazin.live_asgi` (`live.asgi`): `/live/`
(Server-Sent Events) is served natively on each worker's event loop, every other path goes
straight to Django's WSGI handler (no Django ASGI request path); bodies over
`MAX_REQUEST_BODY_BYTES` are refused before they are read. Several worker processes on
PostgreSQL, where LISTEN/NOTIFY carries changes between them; one on SQLite, whose live
channel is in-process. Static files via WhiteNoise with far-future cache headers (after
collectstatic). Configuration comes from the environment and `.env`, as in production;
`HTTPS` defaults to off here because this serves plain http on a laptop.

    make serve                        # http://127.0.0.1:8000
    HOST=0.0.0.0 PORT=8080 WEB_CONCURRENCY=4 make serve
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main() -> None:
    env = dict(os.environ)
    env.setdefault("DEBUG", "0")
    env.setdefault("HTTPS", "0")
    env.setdefault("LIVE_GRID_CACHE", "1")
    dotenv = (ROOT / ".env").read_text() if (ROOT / ".env").exists() else ""
    if "SECRET_KEY" not in env and "SECRET_KEY=" not in dotenv:
        print("serve: no SECRET_KEY set; using a random one (sessions end on restart)")
        env["SECRET_KEY"] = secrets.token_urlsafe(50)
    host = env.get("HOST", "127.0.0.1")
    port = env.get("PORT", "8000")

    manage = [PY, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*manage, "collectstatic", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    database_url = env.get("DATABASE_URL", "") or _dotenv_value(dotenv, "DATABASE_URL")
    if database_url.startswith(("postgres", "pgsql")):
        workers = env.get("WEB_CONCURRENCY") or str(os.cpu_count() or 2)
    else:
        # SQLite's live channel is in-process: a second worker would miss the first's events.
        workers = "1"
        print("serve: SQLite, so one worker (set DATABASE_URL=postgres://... for several)")

    command = granian_command(host=host, port=port, workers=workers)
    print(f"serve: http://{host}:{port}/  ({workers} worker(s); Ctrl-C stops)", flush=True)
    os.chdir(ROOT)
    os.execvpe(PY, command, env)


def granian_command(*, host: str, port: str, workers: str) -> list[str]:
    """The server as `make serve` runs it (tests start the same one).

    On SIGTERM or Ctrl-C each worker ends its open /live/ streams at once (live.asgi), so
    granian's graceful stop, which waits for open requests, takes about a second.
    """
    return [
        PY, "-m", "granian", "--interface", "asgi",
        "--host", host, "--port", port, "--workers", workers,
        "--no-ws", "--backlog", "4096", "--backpressure", "4096",
        "--respawn-failed-workers", "--no-access-log",
        "amazin.live_asgi:application",
    ]  # fmt: skip


def _dotenv_value(text: str, key: str) -> str:
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip().strip("'\"")
    return ""


if __name__ == "__main__":
    main()
