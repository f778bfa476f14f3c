from __future__ import annotations

import logging
from http import HTTPStatus

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from cart.selectors import cart_for_request
from payments import services, stripe_api, webhooks
from payments.forms import SessionForm
from payments.models import Order, StripeEvent

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's signed POST: 400 if not genuine; otherwise recorded and queued (200), or 500
    if its handler has already failed, so that Stripe's redeliveries keep trying too."""
    try:
        event = stripe_api.verify_webhook(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except stripe_api.SignatureVerificationError:
        return JsonResponse({"error": "invalid signature"}, status=HTTPStatus.BAD_REQUEST)
    except ValueError:
        return JsonResponse({"error": "invalid payload"}, status=HTTPStatus.BAD_REQUEST)

    record = webhooks.stripe_event_receive(event=event)

    if record.status == StripeEvent.Status.FAILED:
        return JsonResponse({"status": record.status}, status=HTTPStatus.INTERNAL_SERVER_ERROR)
    return JsonResponse({"status": record.status})


@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    cart = cart_for_request(request)
    try:
        started = services.checkout_start(user=request.user, cart=cart)
    except services.CheckoutError as exc:
        messages.error(request, exc.message)
        return redirect("cart:detail")
    response = HttpResponseRedirect(started.url)
    response.status_code = HTTPStatus.SEE_OTHER  # "go and GET this", as a POST's answer
    return response


def _is_ours(request: HttpRequest, order: Order) -> bool:
    """Another user's order is not shown; an anonymous order is, to whoever holds its session."""
    return order.user_id is None or order.user_id == request.user.pk


@require_GET
def checkout_success(request: HttpRequest) -> HttpResponse:
    form = SessionForm(request.GET)
    order = None
    if form.is_valid():
        try:
            order = services.fulfil_checkout_session(session_id=form.cleaned_data["session_id"])
        except stripe_api.StripeError as exc:
            logger.info("Success page for %s: %s", form.cleaned_data["session_id"], exc)
    if order is None or not _is_ours(request, order):
        messages.error(
            request,
            "We could not find a completed payment for that link. If you paid, your "
            "confirmation email is on its way.",
        )
        return redirect("store:grid")
    return render(request, "payments/success.html", {"order": order})


@require_GET
def checkout_cancel(request: HttpRequest) -> HttpResponse:
    form = SessionForm(request.GET)
    if form.is_valid():
        order = services.checkout_cancel(session_id=form.cleaned_data["session_id"])
        if order is not None and order.status == Order.Status.PAID:
            return redirect("payments:order", order.pk)
        if order is not None and order.kind == Order.Kind.ACCESS:
            messages.info(request, "Checkout cancelled: nothing was charged for the members' pass.")
            return redirect("accounts:purchase")
    messages.info(request, "Checkout cancelled: nothing was charged, your cart is still here.")
    return redirect("cart:detail")


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.for_user(request.user).prefetch_related("lines__product")
    return render(request, "payments/order_list.html", {"orders": orders})


@login_required
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.for_user(request.user).prefetch_related("lines__product"), pk=pk
    )
    return render(request, "payments/order_detail.html", {"order": order})
