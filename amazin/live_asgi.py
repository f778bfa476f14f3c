"""The production entry point (`make serve`): one ASGI app, one port, two kinds of requests.

- `GET /live/` is answered here, natively on the event loop: thousands of open streams cost
  a queue and a task each, no thread.
- Every other request goes straight to Django's WSGI handler on a small thread pool
  (`LIVE_ASGI_PAGE_THREADS`, default 2 per worker): pages never go through Django's ASGI
  request path (asgiref's per-request thread and sync/async hops), which costs 6-18x on
  this machine. `LIVE_ASGI_PAGE_THREADS=0` calls it on the event loop's own thread instead:
  5-15% more grid throughput, but a slow page (checkout waiting on Stripe) would then stall
  every stream and page on that worker (bench/README.md).

Run with `granian --interface asgi amazin.live_asgi:application`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amazin.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from store import live  # noqa: E402

wsgi_app = get_wsgi_application()
logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PAGE_THREADS = int(os.environ.get("LIVE_ASGI_PAGE_THREADS", "2"))
_pool = ThreadPoolExecutor(PAGE_THREADS, thread_name_prefix="page") if PAGE_THREADS else None
if _pool is None:
    # Pages run on the event loop's thread on purpose (see the module docstring): tell
    # Django's guard against blocking calls in async code that this is deliberate.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] != "http":
        return
    elif scope["path"] == "/live/" and scope["method"] in ("GET", "HEAD"):
        await live_stream(scope, receive, send)
    else:
        await call_wsgi(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Listen from the start, so a page rendered now can be caught up later.
            await asyncio.to_thread(live.get_broker().start)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            live.get_broker().stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- /live/ --------------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _query_param(scope: Scope, name: str) -> str:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else ""


async def live_stream(scope: Scope, receive: Receive, send: Send) -> None:
    loop = asyncio.get_running_loop()
    broker = live.get_broker()
    if broker._thread is None:
        await asyncio.to_thread(broker.start)
    sub = broker.subscribe_async(loop)
    last_id = _header(scope, b"last-event-id") or _query_param(scope, "last")
    disconnected = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()
        live.offer_stop(sub)

    watcher = asyncio.create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await _body(send, f"retry: {live.RETRY_MS}\n\n".encode())
        if last_id:
            backlog = await asyncio.to_thread(_catch_up, broker, last_id)
            if backlog:
                await _body(send, backlog)
        while not disconnected.is_set():
            try:
                message = await asyncio.wait_for(sub.queue.get(), live.HEARTBEAT_SECONDS)
            except TimeoutError:
                message = live.HEARTBEAT
            if message is None:
                break
            if message is live.RESET:
                message = await asyncio.to_thread(_reset, broker)
            await _body(send, message)
    except Exception:  # the viewer went away mid-write (the server's error type varies)
        logger.debug("live: stream ended", exc_info=True)
    finally:
        broker.unsubscribe(sub)
        watcher.cancel()


def _catch_up(broker: live.Broker, last_id: str) -> bytes:
    from django.db import close_old_connections

    try:
        return broker.catch_up(last_id)
    finally:
        close_old_connections()


def _reset(broker: live.Broker) -> bytes:
    from django.db import close_old_connections

    try:
        return broker.reset_message()
    finally:
        close_old_connections()


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


# -- everything else: Django's WSGI handler ------------------------------------------------


async def call_wsgi(scope: Scope, receive: Receive, send: Send) -> None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    environ = _environ(scope, bytes(body))
    if _pool is None:
        status, headers, chunks = _run_wsgi(environ)
    else:
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(_pool, _run_wsgi, environ)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": chunks})


def _run_wsgi(environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Call the WSGI app and collect its answer (pages are small; streams live in /live/)."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started[:] = [status, headers]

    result: Iterable[bytes] = wsgi_app(environ, start_response)
    try:
        chunks = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    return (
        int(status[:3]),
        [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        chunks,
    )


def _environ(scope: Scope, body: bytes) -> dict[str, Any]:
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("", 0)
    path = scope["path"]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": client[0],
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": _pool is not None,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    for key, value in scope["headers"]:
        name = key.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
        elif name == "CONTENT_LENGTH":
            continue
        else:
            name = f"HTTP_{name}"
            environ[name] = f"{environ[name]},{text}" if name in environ else text
    return environ
