"""The road `make serve` did not take, kept to be measured: pages through a2wsgi's
`WSGIMiddleware` instead of `live.pages` (everything else as in `live.asgi`)."""

from __future__ import annotations

from typing import Any

from a2wsgi import WSGIMiddleware
from django.conf import settings

from live import asgi
from live.guard import Guard

# django-stubs types the handler's answer HttpResponseBase, a2wsgi wants Iterable[bytes]
# (which an HttpResponse is).
pages = WSGIMiddleware(asgi.wsgi_app, workers=asgi.PAGE_THREADS or 1)  # type: ignore[arg-type]


async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and not (scope["path"] == "/live/" and scope["method"] == "GET"):

        async def receive_message() -> dict[str, Any]:  # a2wsgi needs a coroutine
            return await receive()

        # Plain-dict ASGI scope and messages where a2wsgi declares TypedDicts.
        await pages(scope, receive_message, send)  # type: ignore[arg-type]
    else:
        await asgi.route(scope, receive, send)


application = Guard(route, max_body=settings.MAX_REQUEST_BODY_BYTES)
