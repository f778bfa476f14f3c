"""Issues 20.1 and 20.2: money is looked at again until it is settled, whatever happened to
the task that should have settled it; a refund or dispute made before the shop saw the
payment is read as the order is filled, and its event kept until then."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core import mail
from django.utils import timezone

from payments import fulfilment, money_look, webhooks
from payments.models import Dispute, Order, Refund, StripeEvent
from store.models import Product
from tests.factories import ProductFactory
from tests.support.orders import paid_session, pending_order
from tests.support.stripe_events import event
from tests.support.tasks import run_deferred

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def unfilled(stripe_sessions, stripe_money):
    """A paid order that cannot be filled (its product sold out meanwhile)."""
    product = ProductFactory(stock=1)
    order = pending_order((product, 1))
    Product.objects.filter(pk=product.pk).update(stock=0)
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    stripe_money.pay(f"pi_test_{order.pk}", 1500)
    return order


def test_an_unfilled_order_whose_refund_task_gave_up_is_refunded_by_the_look_once(
    settings, stripe_sessions, stripe_money, committed
):
    settings.TASK_MAX_ATTEMPTS = 2
    order = unfilled(stripe_sessions, stripe_money)
    stripe_money.faults = ["unavailable"] * 2  # Stripe down for both of the task's tries

    with committed():
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    with committed():
        run_deferred()  # the second and last try: the task gives up
    gave_up = Order.objects.get(pk=order.pk).status, run_deferred()
    with committed():
        first = money_look.money_look()
        second = money_look.money_look(now=timezone.now() + timedelta(hours=1))

    assert gave_up == (Order.Status.REFUND_PENDING, 0)  # and no retry is left
    assert (first.unfilled, first.settled) == (1, 1)
    assert second.unfilled == 0
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert stripe_money.refunded(order.stripe_payment_intent_id) == 1500
    assert len(stripe_money.creates) == 1
    assert [m.subject for m in mail.outbox] == [
        f"Your Amazin order #{order.pk} could not be filled and was refunded"
    ]


def test_a_refund_claimed_by_a_process_that_died_is_taken_over(paid_order, stripe_money):
    order = paid_order(amount=5000)
    dead = Refund.objects.create(
        order=order,
        amount=1000,
        currency="usd",
        idempotency_key="dead",
        sent_at=timezone.now(),
        requests=1,
    )

    soon = money_look.money_look()
    later = money_look.money_look(now=timezone.now() + timedelta(minutes=6))

    assert soon.refunds == 0  # its claim is fresh: it may still be on its way
    assert later.refunds == later.settled == 1
    dead.refresh_from_db()
    assert dead.status == Refund.Status.SUCCEEDED
    assert stripe_money.refunded(order.stripe_payment_intent_id) == 1000


def test_a_paid_sessions_event_that_failed_for_good_is_run_again(stripe_sessions, webhook):
    product = ProductFactory(stock=3)
    order = pending_order((product, 1))
    payload = event("checkout.session.completed", paid_session(order))
    webhook.post(payload)  # Stripe does not know the session yet: the event fails
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    record = StripeEvent.objects.get()

    money_look.money_look(now=timezone.now() + timedelta(hours=2))

    assert record.status == StripeEvent.Status.FAILED
    record.refresh_from_db()
    assert record.status == StripeEvent.Status.PROCESSED
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_a_refund_made_before_the_shop_saw_the_payment_is_not_lost(
    stripe_sessions, stripe_money, webhook, committed
):
    """Issue 20.1: the payment's events lost, the charge refunded in Stripe's dashboard,
    then the order filled: it reads refunded, no unit taken; the refund's event, which came
    first, is kept and applied."""
    product = ProductFactory(stock=3)
    order = pending_order((product, 1))
    intent = f"pi_test_{order.pk}"
    stripe_money.pay(intent, 1500)
    made = stripe_money.refund(intent, 1500)
    with committed():
        charge = {"id": f"ch_{intent}", "object": "charge", "payment_intent": intent}
        webhook.post(event("charge.refunded", charge))
    kept = StripeEvent.objects.get()
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with committed():
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
        looked = money_look.money_look()

    assert kept.status == StripeEvent.Status.WAITING
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.REFUNDED, 1500)
    assert Refund.objects.get().stripe_refund_id == made["id"]
    assert Product.objects.with_reserved().get(pk=product.pk).available() == 3
    assert Product.objects.get(pk=product.pk).stock == 3
    assert looked.events == 1
    kept.refresh_from_db()
    assert kept.status == StripeEvent.Status.PROCESSED
    assert [m.subject for m in mail.outbox] == [f"Your Amazin order #{order.pk} was refunded"]


def test_a_part_refund_and_a_dispute_made_before_the_fill_are_on_the_order(
    stripe_sessions, stripe_money, webhook
):
    product = ProductFactory(stock=3)
    order = pending_order((product, 2))
    intent = f"pi_test_{order.pk}"
    stripe_money.pay(intent, 3000)
    stripe_money.refund(intent, 500)
    dispute = stripe_money.dispute(intent, 2500)
    webhook.post(event("charge.dispute.created", dispute))
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    money_look.money_look()

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 500)
    assert Dispute.objects.get().order_id == order.pk
    assert Product.objects.get(pk=product.pk).stock == 1  # filled: the goods go out
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.WAITING).exists()


def pile_of_events(status: str, **fields: object) -> None:
    """1,000 older refund events of payments no order has (another app's, on the same
    Stripe account), more than a look reads at once."""
    StripeEvent.objects.bulk_create(
        StripeEvent(
            stripe_id=f"evt_other_{n}",
            type="charge.refunded",
            payload=event("charge.refunded", {"id": f"ch_{n}", "payment_intent": f"pi_{n}"}),
            stripe_created=1,
            status=status,
            **fields,
        )
        for n in range(1000)
    )


def test_a_waiting_refund_is_applied_behind_a_thousand_that_wait_for_nothing(
    paid_order, stripe_money
):
    pile_of_events(StripeEvent.Status.WAITING)
    order = paid_order(amount=5000)
    intent = order.stripe_payment_intent_id
    stripe_money.refund(intent, 1000)
    charge = {"id": f"ch_{intent}", "object": "charge", "payment_intent": intent}
    kept = webhooks.stripe_event_record(event=event("charge.refunded", charge))
    StripeEvent.objects.filter(pk=kept.pk).update(status=StripeEvent.Status.WAITING)

    looked = money_look.money_look()

    assert looked.events == 1
    kept.refresh_from_db()
    assert kept.status == StripeEvent.Status.PROCESSED
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 1000)


def test_a_failed_event_is_run_again_behind_a_thousand_still_backing_off(stripe_sessions, webhook):
    later = timezone.now() + timedelta(hours=2)
    pile_of_events(StripeEvent.Status.FAILED, attempts=5, claimed_at=later)  # 16 min to wait
    product = ProductFactory(stock=3)
    order = pending_order((product, 1))
    webhook.post(event("checkout.session.completed", paid_session(order)))  # fails: unknown
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    looked = money_look.money_look(now=later)

    assert looked.events == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_staff_look_again_at_stripe_for_one_order(admin_client, paid_order, stripe_money):
    order = paid_order(amount=5000)
    stripe_money.refund(order.stripe_payment_intent_id, 1200)  # its events never came

    page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    response = admin_client.post(f"/admin/payments/order/{order.pk}/look/", follow=True)

    assert "Look again at Stripe" in page
    assert response.status_code == HTTPStatus.OK
    assert "Looked again at Stripe" in response.content.decode()
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 1200)


def test_staff_look_again_for_selected_orders(admin_client, paid_order, stripe_money):
    orders = [paid_order(amount=5000), paid_order(amount=3000)]
    stripe_money.refund(orders[1].stripe_payment_intent_id, 3000)

    admin_client.post(
        "/admin/payments/order/",
        {"action": "look_again", "_selected_action": [o.pk for o in orders]},
    )

    assert [Order.objects.get(pk=o.pk).status for o in orders] == ["paid", "refunded"]


def test_the_worker_starts_the_look_and_keeps_it_going(settings):
    from django_tasks_db.models import DBTaskResult

    from payments import tasks

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}

    tasks.periodic_start()
    started = DBTaskResult.objects.filter(task_path=tasks.money_look_periodic.module_path)
    first = started.get()
    DBTaskResult.objects.all().delete()
    tasks.money_look_periodic.call()

    assert first.run_after <= timezone.now()
    assert settings.MONEY_LOOK_EVERY_SECONDS == 60
    follows = DBTaskResult.objects.get(task_path=tasks.money_look_periodic.module_path)
    assert follows.run_after > timezone.now() + timedelta(seconds=50)
