import time
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from payments.emails import order_email
from payments.models import Order
from store import live
from store.models import Product, Reservation


def hello(request: HttpRequest) -> HttpResponse:
    """The trivial view the pages are measured against: same server, same middleware."""
    return HttpResponse("hello\n", content_type="text/plain")


@csrf_exempt
def change(request: HttpRequest) -> HttpResponse:
    """One catalog change, made as the store's services make it (commit, then publish), in
    the server itself: on SQLite the live channel is in-process, so a change made in
    another process (the bench, the queue worker) would never reach the server's caches.

    `?pk=&name=` renames; `?pk=&kind=stock` adds a unit; `?pk=&kind=reserve` holds one for
    two seconds (so it also ends by the clock).
    """
    pk = int(request.GET["pk"])
    kind = request.GET.get("kind", "name")
    with transaction.atomic():
        if kind == "stock":
            Product.objects.filter(pk=pk).update(stock=F("stock") + 1)
        elif kind == "reserve":
            Reservation.objects.create(
                product_id=pk,
                quantity=1,
                holder="bench",
                expires_at=timezone.now() + timedelta(seconds=2),
            )
        else:
            Product.objects.filter(pk=pk).update(name=request.GET["name"])
        live.publish_on_commit([pk], listing=kind == "name")
    return HttpResponse("ok\n", content_type="text/plain")


@csrf_exempt
def order_paid_email(request: HttpRequest) -> HttpResponse:
    """An order and its confirmation email, committed together as fulfilment commits them;
    answers the commit's `time.time()` (bench/webhooks.py: the email's latency)."""
    with transaction.atomic():
        order = Order.objects.create(currency="usd", email="bench@example.com", status="paid")
        order_email(order=order, template="order_confirmation")
    committed = time.time()
    return HttpResponse(f"{order.pk} {committed}\n", content_type="text/plain")


urlpatterns = [
    path("bench/hello", hello),
    path("bench/change", change),
    path("bench/order-email", order_paid_email),
    path("", include("amazin.urls")),
]
