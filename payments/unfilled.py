"""The refund of a paid order that cannot be filled (`refund_pending`, payments.fulfilment).

`order_refund_unfilled` is the one idempotent step that settles it, run by the order's queued
task, by the periodic look (payments.money_look) and from the admin, in any number and at
once: it reads what Stripe already has for the payment (a refund made in Stripe's dashboard,
or by a request whose answer was lost), records the refund to make (a Refund row, source
`unfilled`) for what is left, and sends it through payments.refunds.refund_send (one request
at a time, a new key after an error answer, Stripe asked first after any request). The order
becomes `refunded`, and its shopper is told, once Stripe says the refund `succeeded`
(payments.refund_sync); a refund Stripe refuses or that fails alerts staff and is not
retried (the money is with the shop: staff decide).
"""

from __future__ import annotations

from django.db import transaction

from payments import stripe_api
from payments.models import Order, OrderEvent, Refund
from payments.refund_sync import PaymentAtStripe, order_money_update, payment_sync
from payments.refunds import refund_send


def _unfilled_refund(order: Order) -> Refund | None:
    return order.refunds.filter(source=Refund.Source.UNFILLED).order_by("-pk").first()


def order_refund_unfilled(*, order_id: int) -> bool:
    """Refund an unfilled order, or find its refund; True once nothing is left to do here
    (refunded, on its way at Stripe, or refused and with staff). Call outside any
    transaction; raises stripe_api.StripeError when Stripe cannot be read (retry later)."""
    order = Order.objects.filter(pk=order_id, status=Order.Status.REFUND_PENDING).first()
    if order is None:
        return True
    if not order.stripe_payment_intent_id:  # nothing was charged (a 100 % discount)
        Order.objects.filter(pk=order.pk, status=Order.Status.REFUND_PENDING).update(
            status=Order.Status.REFUNDED,
            problem=order.problem.replace("refund under way", "nothing to refund"),
        )
        return True
    refund = _unfilled_refund(order)
    if refund is None:
        # What Stripe has already: refunded in its dashboard, or by an older version of this
        # task (whose requests carried no `amazin_refund`): only what is left is refunded.
        payment_id = order.stripe_payment_intent_id
        refunds = stripe_api.refunds_of_payment(payment_id)
        payment_sync(at_stripe=PaymentAtStripe(payment_id, refunds=refunds))
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=order.pk)
            refund = _unfilled_refund(order)
            if order.status != Order.Status.REFUND_PENDING:
                return True
            if refund is None:
                if not order.refundable:
                    order_money_update(order=order)
                    return True
                refund = Refund.objects.create(
                    order=order,
                    amount=order.refundable,
                    currency=order.currency,
                    source=Refund.Source.UNFILLED,
                    idempotency_key=order.idempotency_key("refund"),
                    reason="The order could not be filled",
                )
                OrderEvent.objects.create(
                    order=order,
                    kind=OrderEvent.Kind.REFUND_REQUESTED,
                    amount=refund.amount,
                    message=refund.reason,
                )
                order_money_update(order=order)
    if refund.status == Refund.Status.REQUESTED:
        refund = refund_send(refund_id=refund.pk)
    return refund.status != Refund.Status.REQUESTED
