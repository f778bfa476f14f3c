"""Emails about an order that staff acted on (shipped, refunded), sent after commit."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from payments.models import Order

logger = logging.getLogger(__name__)


def order_email(*, order: Order, template: str, subject: str, **extra: Any) -> None:
    """Send `emails/<template>.txt|html` to the order's address once the transaction commits."""

    def send() -> None:
        if not order.email:
            logger.warning("Order %s has no email address; %s not sent", order.pk, template)
            return
        context = {
            "order": order,
            "lines": list(order.lines.select_related("product")),
            "site_url": settings.SITE_URL,
            **extra,
        }
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string(f"emails/{template}.txt", context),
            to=[order.email],
        )
        message.attach_alternative(
            render_to_string(f"emails/{template}.html", context), "text/html"
        )
        message.send()

    transaction.on_commit(send, robust=True)
