from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from live import sse
from live.broker import get_broker


@require_GET
def stream(request: HttpRequest) -> StreamingHttpResponse:
    """`GET /live/`, the one SSE endpoint: on a thread per viewer under WSGI (`make run`),
    on the event loop under ASGI (`make serve`, whose entry point calls `content` itself)."""
    response = StreamingHttpResponse(content(request), content_type=sse.CONTENT_TYPE)
    for name, value in sse.HEADERS.items():
        response[name] = value
    return response


def content(request: HttpRequest) -> Iterator[bytes] | AsyncIterator[bytes]:
    """The stream `GET /live/` sends this viewer: async for an ASGI request. The request
    is not kept: `live.asgi` holds thousands of these open."""
    last_id = request.headers.get("Last-Event-ID") or request.GET.get("last", "")
    ids = parse_ids(request.GET.get("ids"))
    broker = get_broker()
    if isinstance(request, ASGIRequest):
        return sse.stream_async(broker, last_id, ids)
    return sse.stream_sync(broker, last_id, ids)


MAX_IDS = 200  # a page shows 48 cards at most; more is not a page


def parse_ids(value: str | None) -> list[int] | None:
    """`?ids=1,2,3`: the fragments the viewer's page shows, so that a reset sends only those
    (None: not given, a reset sends every fragment)."""
    if value is None:
        return None
    return [int(part) for part in value.split(",")[:MAX_IDS] if part.isdigit() and len(part) <= 18]
