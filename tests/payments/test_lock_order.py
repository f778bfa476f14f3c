"""Issue 20.8: a staff refund and the webhook's charge sync take the same row locks in the
same order (the order's row, then its refunds), so neither can deadlock the other.

The two are made to meet at the worst moment: the charge sync takes its first lock only once
the staff refund holds a refund row, and the staff refund, if it then wants the order's row,
waits until the sync holds it. Taken in opposite orders that is a deadlock (PostgreSQL kills
one of them); in one order, one simply waits for the other.
"""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.db import connection

from payments import refund_sync, refunds
from payments.models import Order, Refund
from tests.payments.test_concurrency import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 10  # seconds: far more than either side needs, never spent in the right order


def locks(sql: str, table: str) -> bool:
    return "FOR UPDATE" in sql and f'FROM "{table}"' in sql


def test_a_staff_refund_and_the_charge_sync_never_deadlock(paid_order, stripe_money):
    order = paid_order(amount=5000)
    intent = order.stripe_payment_intent_id
    refund_holds_a_refund, sync_holds_the_order = threading.Event(), threading.Event()

    def staff(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if locks(sql, "payments_order") and refund_holds_a_refund.is_set():
            sync_holds_the_order.wait(WAIT)  # only reached when the refund row came first
        result = execute(sql, params, many, context)
        if locks(sql, "payments_refund"):
            refund_holds_a_refund.set()
        return result

    def sync(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if locks(sql, "payments_order"):
            refund_holds_a_refund.wait(WAIT)
        result = execute(sql, params, many, context)
        if locks(sql, "payments_order"):
            sync_holds_the_order.set()
        return result

    def made() -> list[dict[str, Any]]:
        return stripe_money.refunds_of_payment(intent)

    charge = {"id": f"ch_{intent}", "payment_intent": intent, "amount": 5000}

    def work(i: int) -> Any:
        if i == 0:
            with connection.execute_wrapper(staff):
                return refunds.order_refund(order_id=order.pk, request_token="lock", amount=700)
        refund_holds_a_refund.wait(WAIT)  # Stripe has made the refund: its events go out
        with (
            connection.execute_wrapper(sync),
            mock.patch(
                "payments.stripe_api.charge_retrieve",
                return_value={**charge, "refunds": {"data": made()}},
            ),
        ):
            return refund_sync.charge_sync(charge_id=charge["id"])

    results = run_at_once(2, work)

    assert not [r for r in results if isinstance(r, Exception)], results
    refund = Refund.objects.get()
    assert (refund.status, refund.amount) == (Refund.Status.SUCCEEDED, 700)
    assert Order.objects.get(pk=order.pk).amount_refunded == 700
