"""The production entry point (`make serve`): one ASGI app, one port, two kinds of requests.

- `GET /live/` is served on the event loop: the one `/live/` view (`live.views.stream`),
  called here directly and its async stream sent as it comes, so thousands of open
  streams cost a queue and a task each, no thread and no middleware.
- Every other request goes to Django's WSGI handler on a small thread pool
  (`live.pages`; `LIVE_ASGI_PAGE_THREADS`, default 2 per worker).
- In front of both, `live.guard`: bodies over `MAX_REQUEST_BODY_BYTES` get 413 before they
  are read, header names with underscores are dropped.

Lifespan: the broker starts with the worker (so a page rendered now can be caught up
later) and stops with it, which ends every open stream with a short `retry:` so browsers
reconnect to a worker that is still up.

Run with `granian --interface asgi live.asgi:application` (or its old name,
`amazin.live_asgi:application`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amazin.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

wsgi_app = get_wsgi_application()  # sets Django up

from django.conf import settings  # noqa: E402
from django.core.exceptions import DisallowedHost  # noqa: E402
from django.core.handlers.asgi import ASGIRequest  # noqa: E402

from live import sse, views  # noqa: E402
from live.broker import get_broker  # noqa: E402
from live.guard import Guard, refuse  # noqa: E402
from live.pages import Pages, Receive, Scope, Send  # noqa: E402

logger = logging.getLogger(__name__)

PAGE_THREADS = int(os.environ.get("LIVE_ASGI_PAGE_THREADS", "2"))
if not PAGE_THREADS:
    # Pages run on the event loop's thread on purpose (see live.pages): tell Django's
    # guard against blocking calls in async code that this is deliberate.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pages = Pages(wsgi_app, threads=PAGE_THREADS)


async def route(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] != "http":
        return
    elif scope["path"] == "/live/" and scope["method"] == "GET":
        await live_stream(scope, receive, send)
    else:
        await pages(scope, receive, send)


application = Guard(route, max_body=settings.MAX_REQUEST_BODY_BYTES)


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await asyncio.to_thread(get_broker().start)
            end_streams_on_signals(asyncio.get_running_loop())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(get_broker().stop)
            await send({"type": "lifespan.shutdown.complete"})
            return


def end_streams_on_signals(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGTERM or Ctrl-C, end every open stream at once, then let the server do its own.

    A server shuts down gracefully: it waits for open requests to finish, which a stream
    never does, and only then tells the app (lifespan.shutdown). So this worker ends its
    streams (each with a short `retry:`) as soon as the signal arrives. The server's own
    handler still runs: ours replaces only Python's handler, and calls it; asyncio's
    handlers are dispatched from the wakeup fd, which the signal writes whatever the
    Python handler. Only on the main thread, where signals are handled.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            # Not get_broker().end_streams() here: the handler may interrupt this very
            # thread inside the broker's lock. The loop runs it next, lock free.
            loop.call_soon_threadsafe(get_broker().end_streams)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:  # nobody else handles it: die as before
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(signum, handler)


STREAM_HEADERS = [
    (b"content-type", sse.CONTENT_TYPE.encode()),
    *((name.lower().encode(), value.encode()) for name, value in sse.HEADERS.items()),
]


async def live_stream(scope: Scope, receive: Receive, send: Send) -> None:
    """`GET /live/`: what `live.views.stream` answers, without its request and response
    objects. Thousands of these stay open, and every object each one keeps alive is one
    more for each full garbage collection to walk: at 5,000 streams a worker, that walk
    is what a change waits for when one comes due."""
    request = ASGIRequest(scope, io.BytesIO())
    try:
        request.get_host()  # ALLOWED_HOSTS, as Django's middleware checks it for pages
    except DisallowedHost:
        await refuse(send, 400, b"Bad Request\n")
        return
    content = views.content(request)
    del request
    assert isinstance(content, AsyncIterator)

    async def pump() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
        async for chunk in content:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    streaming = asyncio.create_task(pump())
    watcher = asyncio.create_task(until_disconnect())
    try:
        await asyncio.wait({streaming, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        streaming.cancel()
        watcher.cancel()
        for result in await asyncio.gather(streaming, watcher, return_exceptions=True):
            if isinstance(result, Exception):  # the viewer went away mid-write
                logger.debug("live: stream ended", exc_info=result)
