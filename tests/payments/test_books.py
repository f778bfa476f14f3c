"""Issue 17.3: `check_books` compares Stripe's charges, refunds and disputes with the shop's
orders, refunds and disputes for a period, and reports every difference with both ids."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from payments import books, refunds, tasks
from payments.models import BooksDifference, Refund
from payments.refund_sync import PaymentAtStripe, payment_sync

pytestmark = pytest.mark.django_db


def check_books() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_books", "--grace", "0", stdout=out)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue()
    return 0, out.getvalue()


def synced(order, stripe_money) -> None:
    intent = order.stripe_payment_intent_id
    payment_sync(
        at_stripe=PaymentAtStripe(
            intent,
            refunds=stripe_money.refunds_of_payment(intent),
            disputes=stripe_money.disputes_of_payment(intent),
        )
    )


def test_books_that_balance_exit_0(paid_order, stripe_money):
    order = paid_order(amount=5000)
    refunds.order_refund(order_id=order.pk, request_token="b1", amount=1000)
    stripe_money.dispute(order.stripe_payment_intent_id, 4000)
    synced(order, stripe_money)

    code, out = check_books()

    assert code == 0, out
    assert "0 difference(s)" in out
    assert not BooksDifference.objects.exists()


def test_every_difference_is_reported_with_both_ids(
    paid_order, stripe_money, settings, django_capture_on_commit_callbacks
):
    settings.STAFF_EMAILS = ["owner@example.com"]
    outside = stripe_money.pay("pi_outside", 900)  # a payment no order explains
    uncharged = paid_order(amount=1200)
    del stripe_money.charges[f"ch_{uncharged.stripe_payment_intent_id}"]
    differs = paid_order(amount=5000)
    stripe_money.charges[f"ch_{differs.stripe_payment_intent_id}"]["amount"] = 4000
    order = paid_order(amount=3000)
    intent = order.stripe_payment_intent_id
    failed_later = refunds.order_refund(order_id=order.pk, request_token="f", amount=500)
    stripe_money.set_refund(failed_later.stripe_refund_id, status="failed")
    unseen = stripe_money.refund(intent, 300)  # made at Stripe, its events lost
    ghost = Refund.objects.create(
        order=order, amount=200, currency="usd", stripe_refund_id="re_ghost", status="succeeded"
    )
    dispute = stripe_money.dispute(intent, 1000)

    with django_capture_on_commit_callbacks(execute=True):
        code, out = check_books()

    assert code == 1
    expected = [
        ("charge_without_order", outside["id"], ""),
        ("order_without_charge", uncharged.stripe_payment_intent_id, f"order #{uncharged.pk}"),
        ("amount_differs", f"ch_{differs.stripe_payment_intent_id}", f"order #{differs.pk}"),
        ("refund_status_differs", failed_later.stripe_refund_id, f"refund #{failed_later.pk}"),
        ("refund_missing_in_shop", unseen["id"], f"order #{order.pk}"),
        ("refund_missing_at_stripe", "re_ghost", f"refund #{ghost.pk}"),
        ("dispute_missing_in_shop", dispute["id"], f"order #{order.pk}"),
    ]
    found = set(BooksDifference.objects.values_list("kind", "stripe_id", "shop_ref"))
    assert found == set(expected)
    for _, stripe_id, shop_ref in expected:
        assert stripe_id in out and shop_ref in out
    assert "7 difference(s)" in out
    assert [m.subject for m in mail.outbox] == [
        "[Amazin] 7 new difference(s) between the books and Stripe's"
    ]


def test_differences_stay_open_until_gone_and_staff_hear_of_new_ones_once(
    paid_order, stripe_money, settings, django_capture_on_commit_callbacks
):
    settings.STAFF_EMAILS = ["owner@example.com"]
    order = paid_order(amount=5000)
    stripe_money.refund(order.stripe_payment_intent_id, 5000)  # its events lost

    with django_capture_on_commit_callbacks(execute=True):
        first, _ = check_books()
        again, _ = check_books()
    synced(order, stripe_money)
    with django_capture_on_commit_callbacks(execute=True):
        fixed, _ = check_books()

    assert (first, again, fixed) == (1, 1, 0)
    difference = BooksDifference.objects.get()
    assert difference.resolved_at is not None
    assert difference.order_id == order.pk
    assert len(mail.outbox) == 1


def test_the_admin_lists_open_differences_linked_to_order_and_stripe(
    admin_client, paid_order, stripe_money
):
    order = paid_order(amount=5000)
    stripe_money.refund(order.stripe_payment_intent_id, 100)
    check_books()
    difference = BooksDifference.objects.get()

    listing = admin_client.get("/admin/payments/booksdifference/").content.decode()
    page = admin_client.get(
        f"/admin/payments/booksdifference/{difference.pk}/change/"
    ).content.decode()

    assert difference.stripe_id in listing
    assert f"/admin/payments/order/{order.pk}/change/" in page
    assert f"dashboard.stripe.com/test/payments/{order.stripe_payment_intent_id}" in page


def test_the_cost_is_three_lists_and_a_look_only_at_what_they_did_not_return(
    paid_order, stripe_money
):
    from payments import stripe_api

    for _ in range(3):
        paid_order(amount=1000)

    books.books_check(grace=books.timedelta(0))

    assert stripe_api.charges_created.call_count == 1
    assert stripe_api.refunds_created.call_count == 1
    assert stripe_api.disputes_created.call_count == 1
    assert stripe_api.payment_intent_retrieve.call_count == 0


def test_the_worker_looks_at_money_at_once_and_compares_the_books_every_day(settings):
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}

    tasks.periodic_start()

    due = dict(DBTaskResult.objects.values_list("task_path", "run_after"))
    look = due[tasks.money_look_periodic.module_path]
    book = due[tasks.books_check_periodic.module_path]
    assert look <= timezone.now()
    assert book >= timezone.now() + timedelta(hours=23)
