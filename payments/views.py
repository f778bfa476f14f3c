from __future__ import annotations

import logging
from http import HTTPStatus

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from amazin.http import AuthenticatedHttpRequest, client_ip
from cart.selectors import cart_for_request, cart_view
from payments import fulfilment, settle, stripe_api, webhook_verify, webhooks
from payments.checkout import CheckoutError, checkout_start
from payments.forms import SessionForm
from payments.models import Order, StripeEvent

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's signed POST: 400 if not genuine; otherwise recorded and queued (200), or 500
    if its handler has already failed, so that Stripe's redeliveries keep trying too."""
    try:
        event = webhook_verify.verify_webhook(
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
    try:
        started = checkout_start(
            user=request.user, cart=cart_for_request(request), client_ip=client_ip(request)
        )
    except CheckoutError as exc:
        messages.error(request, exc.message)
        if exc.status == HTTPStatus.TOO_MANY_REQUESTS:  # the cart page, with the reason
            cart = cart_view(cart_for_request(request))
            return render(request, "cart/detail.html", {"cart": cart}, status=exc.status)
        return redirect("cart:detail")
    response = HttpResponseRedirect(started.url)
    response.status_code = HTTPStatus.SEE_OTHER  # "go and GET this", as a POST's answer
    return response


def placed_here(request: HttpRequest, order: Order) -> bool:
    """Whether this browser (its cart) or this user placed the order."""
    if order.user_id is not None:
        return order.user_id == request.user.pk
    cart = cart_for_request(request)
    return cart is not None and order.cart_id == cart.pk


@require_GET
def checkout_success(request: HttpRequest) -> HttpResponse:
    form = SessionForm(request.GET)
    order = None
    if form.is_valid():
        try:
            order = fulfilment.fulfil_checkout_session(session_id=form.cleaned_data["session_id"])
        except stripe_api.StripeError as exc:
            logger.info("Success page for %s: %s", form.cleaned_data["session_id"], exc)
    if order is None:
        messages.error(
            request,
            "We could not find a completed payment for that link. If you paid, your "
            "confirmation email is on its way.",
        )
        return redirect("store:grid")
    # Anyone holding the link learns that it was paid; only who placed it sees what and where.
    return render(
        request, "payments/success.html", {"order": order, "details": placed_here(request, order)}
    )


@require_GET
def checkout_cancel(request: HttpRequest) -> HttpResponse:
    """Back from Checkout without paying. Only the browser that placed the order cancels it,
    and its stock is freed only once Stripe says the session is expired."""
    form = SessionForm(request.GET)
    order = None
    if form.is_valid():
        order = Order.objects.filter(stripe_session_id=form.cleaned_data["session_id"]).first()
    if order is None or not placed_here(request, order):
        messages.info(request, "Nothing to cancel here.")
        return redirect("cart:detail")
    if order.status == Order.Status.PENDING:
        order = settle.order_settle_with_stripe(order=order)
    if order.status in fulfilment.CHECKED_OUT:
        return redirect(f"{reverse('payments:success')}?session_id={order.stripe_session_id}")
    if order.status == Order.Status.PENDING:
        messages.warning(
            request,
            "We could not confirm the cancellation with our payment provider yet. If you did "
            "not pay, your items are released when the checkout runs out.",
        )
    elif order.kind == Order.Kind.ACCESS:
        messages.info(request, "Checkout cancelled: nothing was charged for the members' pass.")
        return redirect("accounts:purchase")
    else:
        messages.info(request, "Checkout cancelled: nothing was charged, your cart is still here.")
    return redirect("cart:detail")


@login_required
@require_GET
def order_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    orders = Order.objects.for_user(request.user).prefetch_related("lines__product")
    return render(request, "payments/order_list.html", {"orders": orders})


@login_required
@require_GET
def order_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.for_user(request.user).prefetch_related("lines__product"), pk=pk
    )
    return render(request, "payments/order_detail.html", {"order": order})
