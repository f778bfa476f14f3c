from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def request_body_limit(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """413 for a body whose Content-Length passes MAX_REQUEST_BODY_BYTES, before anything
    reads it. Django reads no more than Content-Length, so that is the whole body."""
    limit = settings.MAX_REQUEST_BODY_BYTES

    def middleware(request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads a malformed length as no body
        if length > limit:
            return HttpResponse(
                "Request body too large.\n", status=413, content_type="text/plain; charset=utf-8"
            )
        return get_response(request)

    return middleware
