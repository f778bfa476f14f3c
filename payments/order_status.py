"""A shopper follows their order without an account: a signed link to its status page.

Every email about an order carries `order_status_url(order)`. The link is the order's id
and a fingerprint of its random `idempotency_token`, signed with SECRET_KEY
(`django.core.signing`): it cannot be guessed or altered (a changed character is a 404),
and an order that gets an old id again in a reset database does not answer an old link.
It shows that order only, and never expires: it is the shopper's receipt.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core import signing
from django.urls import reverse

from payments.models import Order

SALT = "payments.order_status"


def _fingerprint(order: Order) -> str:
    return hashlib.sha256(order.idempotency_token.encode()).hexdigest()[:16]


def order_status_token(order: Order) -> str:
    return signing.Signer(salt=SALT).sign_object([order.pk, _fingerprint(order)])


def order_status_url(order: Order) -> str:
    """The absolute address of `order`'s status page, for emails (and staff to send)."""
    path = reverse("payments:order_status", args=[order_status_token(order)])
    return f"{settings.SITE_URL}{path}"


def order_for_token(token: str) -> Order | None:
    """The order a status link names, or None if the link was not made by us for it."""
    try:
        pk, fingerprint = signing.Signer(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(pk, int) or not isinstance(fingerprint, str):
        return None
    order = Order.objects.filter(pk=pk).first()
    if order is None or _fingerprint(order) != fingerprint:
        return None
    return order
