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
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.template.loader import render_to_string
from django_tasks import task

from payments.models import Order, Refund
from payments.queue import retry_later

logger = logging.getLogger(__name__)

SUBJECTS = {
    "order_confirmation": "Your Amazin order #{pk}",
    "order_refunded": "Your Amazin order #{pk} could not be filled and was refunded",
    "order_shipped": "Your Amazin order #{pk} has shipped",
    "order_payment_failed": "Your Amazin order #{pk}: your payment did not arrive",
    "order_hold_ended": "Your Amazin order #{pk}: your items are no longer held",
    "order_dispute_lost": "Your Amazin order #{pk}: your bank returned your payment",
}


def order_email(
    *, order: Order, template: str, subject: str = "", refund: Refund | None = None
) -> None:
    """Send `emails/<template>.txt|html` about `order` once its transaction commits (through
    the queue); `refund` is the one the email is about, if any."""
    order_email_send.enqueue(
        order_id=order.pk,
        template=template,
        subject=subject or SUBJECTS[template].format(pk=order.pk),
        refund_id=refund.pk if refund is not None else None,
    )


@task()
def order_email_send(
    *, order_id: int, template: str, subject: str, refund_id: int | None = None, attempt: int = 1
) -> None:
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
        "refund": Refund.objects.filter(pk=refund_id).first() if refund_id else None,
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        to=[order.email],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    try:
        message.send()
    except (OSError, smtplib.SMTPException) as exc:
        retry_later(
            order_email_send,
            attempt=attempt,
            error=exc,
            order_id=order_id,
            template=template,
            subject=subject,
            refund_id=refund_id,
        )


def staff_alert(*, order: Order, subject: str, note: str) -> None:
    """Money on `order` needs staff: mark it in the admin (`Order.attention`, until staff say
    it is dealt with) and email STAFF_EMAILS once the caller's transaction commits."""
    order.attention = "\n".join(line for line in (order.attention, note) if line)
    Order.objects.filter(pk=order.pk).update(attention=order.attention)
    link = f"{settings.SITE_URL}/admin/payments/order/{order.pk}/change/"
    staff_email(subject=f"[Amazin] {subject}", body=f"{note}\n\nOrder #{order.pk}: {link}\n")


def staff_email(*, subject: str, body: str) -> None:
    """Email the staff (STAFF_EMAILS) once the caller's transaction commits (queued)."""
    staff_email_send.enqueue(subject=subject, body=body)


@task()
def staff_email_send(*, subject: str, body: str, attempt: int = 1) -> None:
    if not settings.STAFF_EMAILS:
        logger.warning("No STAFF_EMAILS: not sent: %s", subject)
        return
    try:
        EmailMessage(subject=subject, body=body, to=list(settings.STAFF_EMAILS)).send()
    except (OSError, smtplib.SMTPException) as exc:
        retry_later(staff_email_send, attempt=attempt, error=exc, subject=subject, body=body)
