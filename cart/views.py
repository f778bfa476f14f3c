from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from cart.selectors import cart_for_request


@require_GET
def cart_detail(request: HttpRequest) -> HttpResponse:
    return render(request, "cart/detail.html", {"cart": cart_for_request(request)})


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    return HttpResponse("The cart is not built yet.", status=501)
