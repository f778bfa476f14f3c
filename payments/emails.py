"""What the shop tells a shopper by email, sent by the background worker.

An email is enqueued in the transaction that gives it a reason (the order is paid, refunded,
shipped), so it goes out if and only if that commits, and never from inside a request or a
transaction: a slow or broken mail server delays the email, not the shop, and the task
retries with back-off.
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django_tasks import task

from payments.models import Order
from payments.queue import retry_later

logger = logging.getLogger(__name__)

SUBJECTS = {
    "order_confirmation": "Your Amazin order #{pk}",
    "order_refunded": "Your Amazin order #{pk} could not be filled and was refunded",
}


def order_email(*, order: Order, template: str) -> None:
    """Send `template` about `order` once its transaction commits (through the queue)."""
    order_email_send.enqueue(order_id=order.pk, template=template)


@task()
def order_email_send(*, order_id: int, template: str, attempt: int = 1) -> None:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return
    if not order.email:
        logger.warning("Order %s has no email address; %s not sent", order.pk, template)
        return
    context = {
        "order": order,
        "lines": list(order.lines.select_related("product")),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=SUBJECTS[template].format(pk=order.pk),
        body=render_to_string(f"emails/{template}.txt", context),
        to=[order.email],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    try:
        message.send()
    except (OSError, smtplib.SMTPException) as exc:
        retry_later(
            order_email_send, attempt=attempt, error=exc, order_id=order_id, template=template
        )
