from __future__ import annotations

import logging
from http import HTTPStatus

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import Count, F, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from accounts import services
from accounts.forms import SignupForm
from accounts.models import Entitlement
from amazin.http import AuthenticatedHttpRequest
from payments.models import Order
from store.models import Product

logger = logging.getLogger(__name__)

NEW_IN_SHOP = 6


def _next_url(request: HttpRequest) -> str:
    """Where to go after signing up: a safe `next`, else the home page."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(_next_url(request))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = form.save()
        except IntegrityError:  # the same email signed up a moment ago, in another request
            form.add_error("email", "An account with this email already exists.")
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Amazin, {user.email}.")
            return redirect(_next_url(request))
    return render(request, "registration/signup.html", {"form": form, "next": _next_url(request)})


@require_GET
@login_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The members' area: this user's orders, what they spent (less what was refunded and
    what their bank took back in disputes the shop lost), and what is new in the shop."""
    entitlement = (
        Entitlement.objects.live()
        .filter(user=request.user, feature=Entitlement.Feature.MEMBERS_AREA)
        .first()
    )
    if entitlement is None:
        messages.info(request, "The members' area is for pass holders. Purchase access to enter.")
        return redirect("store:grid")

    paid = Order.objects.for_user(request.user).paid()
    orders = paid.prefetch_related("lines__product")
    spend = list(
        paid.order_by("currency")
        .values("currency")
        .annotate(
            # Money back with the shopper, as Stripe says: refunds that succeeded (one still
            # pending is not back yet), and disputes lost.
            total=Sum(F("amount_total") - F("amount_refunded") - F("amount_disputed")),
            count=Count("id"),
        )
    )
    new_products = Product.objects.visible().order_by("-created_at", "-id")[:NEW_IN_SHOP]
    return render(
        request,
        "accounts/dashboard.html",
        {
            "entitlement": entitlement,
            "orders": orders,
            "spend": spend,
            "new_products": new_products,
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def purchase(request: AuthenticatedHttpRequest) -> HttpResponse:
    """GET: the pass and its price. POST: off to Stripe Checkout to buy it (or not, see below).

    An anonymous POST goes to login with `next` = this URL, so after logging in the shopper
    lands on this page's GET, sees the pass again and confirms with one more click: a POST
    cannot be replayed through a login redirect.
    """
    if services.user_has_access(request.user):
        messages.info(request, "You already have access to the members' area.")
        return redirect("accounts:dashboard")
    price = services.access_price()
    if request.method == "GET":
        return render(request, "accounts/purchase.html", {"price": price})

    result = services.access_purchase_start(user=request.user)
    if result.url:
        return _see_other(result.url)
    if result.outcome is services.PurchaseOutcome.ALREADY_MEMBER:
        messages.info(request, "You already have access to the members' area.")
        return redirect("accounts:dashboard")
    messages.error(request, result.message)
    return redirect("store:grid")


def _see_other(url: str) -> HttpResponse:
    """303: the browser follows with a GET, as Stripe's hosted Checkout page expects."""
    response = HttpResponse(status=HTTPStatus.SEE_OTHER)
    response["Location"] = url
    return response
