"""Request helpers: the request type for the type checker, and the client's address."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """The request a `@login_required` view receives: its user is a `User`, never anonymous."""

    user: User


def client_ip(request: HttpRequest) -> str:
    """The address of the client, for per-address limits (checkout, log-in lockout).

    Without TRUSTED_PROXY_HOPS (0, the default) it is the connecting address: a header can be
    sent by anyone, so X-Forwarded-For is never read. Behind N proxies that each append the
    address they received the request from (nginx's `$proxy_add_x_forwarded_for`, most load
    balancers), the client is the Nth address from the right of X-Forwarded-For: whatever a
    client wrote into the header itself stays to the left of it. A header with fewer
    addresses than that, or something that is not an address there, did not come through
    the proxies: the connecting address is used.
    """
    remote: str = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_HOPS
    if hops < 1:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
