"""The shop's error pages, with one exception: a request that met none of the middleware."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views import defaults


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The shop's 404 (templates/404.html, in its layout). A request answered before the
    middleware ran (a missing static file under runserver or the test server) has no
    session for the layout's header to read: it gets a plain 404 instead of a 500."""
    if not hasattr(request, "session"):
        return HttpResponseNotFound("Not found\n", content_type="text/plain")
    return defaults.page_not_found(request, exception)
