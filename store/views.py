from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from live.broker import get_broker
from live.registry import CSRF_PLACEHOLDER
from store.models import Product


def _first_visit(request: HttpRequest) -> bool:
    """No session and no flash messages: the page is the same for every such visitor."""
    cookies = request.COOKIES
    return settings.SESSION_COOKIE_NAME not in cookies and "messages" not in cookies


@require_GET
def product_grid(request: HttpRequest) -> HttpResponse:
    broker = get_broker()
    last_id = broker.last_id  # before the snapshot: the stream replays anything after it
    snap = broker.snapshot()  # cached per catalog version with LIVE_GRID_CACHE on
    token = get_token(request)
    context = {
        "grid_body": mark_safe(snap.body),
        "has_products": bool(snap.order),
        "live_last": last_id,
    }
    if snap.cached and _first_visit(request):
        # The whole page, rendered once per catalog version; only the CSRF token varies.
        page = broker.cached_page(
            snap,
            lambda: render_to_string(
                "store/grid.html", context | {"csrf_token": CSRF_PLACEHOLDER}, request
            ),
        )
        return HttpResponse(token.encode().join(page))
    response = render(request, "store/grid.html", context)
    response.content = response.content.replace(CSRF_PLACEHOLDER.encode(), token.encode())
    return response


@require_GET
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    broker = get_broker()
    last_id = broker.last_id
    product = get_object_or_404(Product.objects.visible().with_reserved(), pk=pk)
    return render(request, "store/detail.html", {"product": product, "live_last": last_id})


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not healthy", never a 500 page
        return HttpResponse("database unreachable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")
