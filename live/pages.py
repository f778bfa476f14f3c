"""Pages under ASGI: every request but `/live/` goes to Django's WSGI handler, off the loop.

Pages never take Django's ASGI request path (asgiref's per-request thread and sync/async
hops cost 6-18x on this machine). Each request is one hop to a small thread pool
(`threads`, `LIVE_ASGI_PAGE_THREADS`), which returns the whole answer (pages are small;
the one stream, `/live/`, never comes here).

The request side is a2wsgi's: its environ builder and its body reader, which pulls the
body from the server as Django reads it, so a body Django never reads (a refused request)
is never held in memory. Not a2wsgi's `WSGIMiddleware` itself: it makes one blocking
thread-to-loop hop per response message (start, each chunk, end), which measured at
40-50% of this module's throughput on the grid (bench/README.md).

`threads=0` calls Django on the event loop's own thread (a little faster, but a slow
page then stalls every stream on that worker); the body is then read first, at most
`MAX_REQUEST_BODY_BYTES` (the guard in front refuses more).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import Body, build_environ
from a2wsgi.wsgi_typing import Environ

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WSGIApp = Callable[..., Iterable[bytes]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class Pages:
    def __init__(self, app: WSGIApp, *, threads: int) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="page") if threads else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.pool is None:
            body = await read_body(receive)
            if body is None:
                return  # the client went away
            # a2wsgi declares HTTPScope and Body: a plain-dict scope and a BytesIO serve.
            environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
            status, headers, content = self.call(environ)
        else:
            loop = asyncio.get_running_loop()
            # A plain-dict scope where a2wsgi declares its HTTPScope TypedDict.
            environ = build_environ(scope, Body(loop, _coroutine(receive)))  # type: ignore[arg-type]
            status, headers, content = await loop.run_in_executor(self.pool, self.call, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def call(self, environ: Environ) -> Answer:
        """Call the WSGI app and collect its answer."""
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return _no_write

        result = self.app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        return (
            int(status[:3]),
            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            content,
        )


def _coroutine(receive: Receive) -> Receive:
    """Body hands `receive()` to run_coroutine_threadsafe, which takes only coroutines;
    granian's is another kind of awaitable."""

    async def receive_message() -> dict[str, Any]:
        return await receive()

    return receive_message


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the WSGI write() callable is not supported")


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (None if the client disconnected)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)
