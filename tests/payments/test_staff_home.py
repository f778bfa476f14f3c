"""The staff home (the admin's index): sales net of refunds per currency, the 30-day chart,
and the to-do list, each count linking to the admin list that shows what it counted, in a
fixed number of queries whatever the number of orders."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from payments import staff_home
from payments.models import (
    BooksDifference,
    Dispute,
    Order,
    Refund,
    StripeCheckpoint,
    StripeEvent,
)
from payments.reconcile import CHECKPOINT
from payments.sales_chart import chart_build, nice_ceiling
from tests.factories import OrderFactory, ProductFactory, UserFactory
from tests.support.staff import shop_staff_join

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 18, 15, 0, tzinfo=UTC)


def paid(amount: int, *, at: datetime = NOW, currency: str = "usd", **fields) -> Order:
    fields.setdefault("status", Order.Status.PAID)
    return OrderFactory.create(amount_total=amount, currency=currency, paid_at=at, **fields)


def dispute(order: Order, status: str) -> Dispute:
    return Dispute.objects.create(
        order=order,
        stripe_dispute_id=f"dp_{order.pk}_{status}",
        amount=100,
        currency=order.currency,
        status=status,
    )


def books_difference(key: str, *, resolved: bool = False) -> BooksDifference:
    return BooksDifference.objects.create(
        key=key,
        kind=BooksDifference.Kind.AMOUNT_DIFFERS,
        stripe_id=f"ch_{key}",
        message="Amounts differ",
        object_created=NOW,
        last_seen=NOW,
        resolved_at=NOW if resolved else None,
    )


def shop_staff() -> User:
    user = UserFactory.create(is_staff=True)
    shop_staff_join(user)
    return user


def test_sales_are_net_of_refunds_per_currency_today_and_this_month():
    paid(5000)
    paid(3000, status=Order.Status.PARTIALLY_REFUNDED, amount_refunded=1000)
    paid(2000, status=Order.Status.REFUNDED, amount_refunded=0)  # all given back
    paid(4000, at=NOW - timedelta(days=3))  # this month, not today
    paid(9000, at=NOW - timedelta(days=20))  # last month, in the chart
    paid(700, currency="eur")
    OrderFactory(amount_total=8000, status=Order.Status.EXPIRED)  # never paid

    usd, eur = staff_home.sales_read(today=NOW.date())

    assert (usd.currency, eur.currency) == ("usd", "eur")
    assert (usd.today.orders, usd.today.gross, usd.today.refunded) == (3, 10000, 3000)
    assert usd.today.net == 7000
    assert (usd.month.orders, usd.month.net) == (4, 11000)
    assert len(usd.days) == 30 and usd.days[-1][0] == NOW.date()
    assert sum(figures.net for _, figures in usd.days) == 20000
    assert (eur.today.net, eur.month.net) == (700, 700)


def test_sales_are_net_of_disputes_lost():
    paid(5000, amount_disputed=2000)  # a dispute lost: the bank took it back
    paid(1000, status=Order.Status.PARTIALLY_REFUNDED, amount_refunded=300, amount_disputed=200)

    (usd,) = staff_home.sales_read(today=NOW.date())

    assert (usd.today.gross, usd.today.refunded, usd.today.disputed) == (6000, 300, 2200)
    assert usd.today.net == usd.month.net == 3500
    assert usd.days[-1][1].net == 3500


def test_a_month_longer_than_the_chart_is_counted_whole():
    today = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    paid(1000, at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC))  # 30 days before

    (usd,) = staff_home.sales_read(today=today.date())

    assert usd.month.net == 1000
    assert usd.days[0][0] == datetime(2026, 3, 2).date()


def test_the_chart_is_an_accessible_svg_with_the_figures_as_a_table(admin_client):
    paid(12345, at=timezone.now())

    html = admin_client.get("/admin/").content.decode()

    chart = html.split('data-testid="sales-chart-usd"')[1].split("</figure>")[0]
    assert 'role="img"' in chart
    assert 'aria-labelledby="chart-usd-title chart-usd-desc"' in chart
    assert '<title id="chart-usd-title">Daily sales, last 30 days (USD)</title>' in chart
    assert "$123.45 in all" in chart
    assert chart.count("<rect") == 30
    assert chart.count("<tr>") == 31  # the header and a row a day
    assert "http" not in chart.replace("http://www.w3.org", "")  # nothing from elsewhere


def test_the_axis_ends_on_a_round_figure():
    assert [nice_ceiling(v, "usd") for v in (1, 100, 101, 12345, 150000)] == [
        100,
        100,
        200,
        20000,
        200000,
    ]
    assert nice_ceiling(1234, "jpy") == 2000


def test_an_empty_month_draws_an_empty_chart():
    sales = staff_home.Sales(
        currency="usd",
        days=[(NOW.date() - timedelta(days=n), staff_home.Figures()) for n in range(30)][::-1],
    )

    chart = chart_build(sales)

    assert {bar.height for bar in chart.bars} == {"0"}
    assert chart.description.endswith("$0.00 in all.")


# -- the to-do list ------------------------------------------------------------------------


def todo_counts(client) -> dict[str, tuple[int, str]]:
    html = client.get("/admin/").content.decode()
    found = re.findall(
        r'<a href="([^"]+)"><span class="todo-count">(\d+)</span> <span class="todo-label">([^<]+)',
        html,
    )
    return {unescape(label): (int(count), unescape(url)) for url, count, label in found}


def listed(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == HTTPStatus.OK, url
    count: int = response.context["cl"].result_count
    return count


def test_each_count_links_to_the_list_of_what_it_counted(admin_client, settings):
    settings.LOW_STOCK_THRESHOLD = 5
    paid(1000)  # to ship
    paid(1000, status=Order.Status.PARTIALLY_REFUNDED)  # to ship
    paid(1000, shipped_at=NOW)  # shipped
    paid(1000, kind=Order.Kind.ACCESS)  # nothing to ship
    OrderFactory(status=Order.Status.PENDING)  # not paid
    order = paid(4000)
    Refund.objects.create(order=order, amount=100, currency="usd", status="pending")
    Refund.objects.create(order=order, amount=200, currency="usd", status="failed")
    retried = paid(4000, shipped_at=NOW)
    Refund.objects.create(order=retried, amount=300, currency="usd", status="failed")
    Refund.objects.create(order=retried, amount=300, currency="usd", status="succeeded")
    Refund.objects.create(order=retried, amount=50, currency="usd", status="canceled")
    waits = paid(4000, shipped_at=NOW)  # failed, then asked again: Stripe wants action
    Refund.objects.create(order=waits, amount=300, currency="usd", status="failed")
    Refund.objects.create(order=waits, amount=300, currency="usd", status="requires_action")
    paid(1000, shipped_at=NOW, attention="Refund of $3.00 failed at Stripe")
    OrderFactory(status=Order.Status.FAILED, attention="Dispute opened")  # listed all the same
    for status in ("needs_response", "warning_under_review", "won", "lost"):
        dispute(retried, status)
    books_difference("a")
    books_difference("b")
    books_difference("c", resolved=True)
    ProductFactory(stock=2)
    ProductFactory(stock=5)
    ProductFactory(stock=6)
    ProductFactory(stock=0, active=False)  # not on sale
    StripeEvent.objects.create(stripe_id="evt_1", type="x", payload={}, status="failed")
    StripeEvent.objects.create(stripe_id="evt_2", type="x", payload={}, status="processed")

    todos = todo_counts(admin_client)

    assert {label: count for label, (count, _) in todos.items()} == {
        "Orders to ship": 3,  # the refunded one's order is to ship too
        "Orders that need staff": 2,
        "Refunds pending or failed": 3,
        "Open disputes": 2,
        "Books that differ from Stripe's": 2,
        "Products low on stock": 2,
        "Stripe events that failed": 1,
    }
    for label, (count, url) in todos.items():
        assert listed(admin_client, url) == count, label


def test_shop_staff_see_the_items_their_group_allows(client):
    client.force_login(shop_staff())
    StripeEvent.objects.create(stripe_id="evt_1", type="x", payload={}, status="failed")

    todos = todo_counts(client)

    assert list(todos) == [
        "Orders to ship",
        "Orders that need staff",
        "Refunds pending or failed",
        "Open disputes",
        "Books that differ from Stripe's",
        "Products low on stock",
    ]
    for _, url in todos.values():  # and the lists they link to
        assert client.get(url).status_code == HTTPStatus.OK, url


def test_staff_without_a_group_see_no_figures(client):
    client.force_login(UserFactory(is_staff=True))
    paid(1000, at=timezone.now())

    html = client.get("/admin/").content.decode()

    assert todo_counts(client) == {}
    assert 'data-testid="sales"' not in html
    assert 'data-testid="worker-health"' in html


def test_the_worker_is_behind_when_a_task_waits_or_reconciliation_stops(settings):
    settings.RECONCILE_EVERY_SECONDS = 300
    settings.RECONCILE_GRACE_SECONDS = 60
    never = staff_home.worker_health(now=NOW)
    base = {
        "args_kwargs": {"args": [], "kwargs": {}},
        "task_path": "payments.tasks.stripe_reconcile_periodic",
        "backend_name": "default",
    }
    late = DBTaskResult.objects.create(
        status=TaskResultStatus.READY, run_after=get_date_max(), **base
    )
    DBTaskResult.objects.filter(pk=late.pk).update(enqueued_at=NOW - timedelta(minutes=7))
    DBTaskResult.objects.create(  # not due yet: not waiting
        status=TaskResultStatus.READY, run_after=NOW + timedelta(minutes=1), **base
    )
    checkpoint = int((NOW - timedelta(minutes=4)).timestamp()) - 60
    StripeCheckpoint.objects.create(name=CHECKPOINT, position=checkpoint)

    health = staff_home.worker_health(now=NOW)

    assert (never.waiting, never.last_reconciled, never.healthy) == (None, None, False)
    assert health.waiting == timedelta(minutes=7)
    assert health.tasks_late and not health.reconcile_late
    assert health.last_reconciled == NOW - timedelta(minutes=4)
    DBTaskResult.objects.filter(pk=late.pk).update(status=TaskResultStatus.SUCCESSFUL)
    assert staff_home.worker_health(now=NOW).healthy


def test_the_worker_line_links_superusers_to_the_waiting_tasks(admin_client):
    html = admin_client.get("/admin/").content.decode()

    line = html.split('data-testid="worker-health"')[1].split("</li>")[0]
    assert "/admin/django_tasks_database/dbtaskresult/?status__exact=READY" in line
    assert "no task waiting" in line and "never reconciled with Stripe" in line


# -- cost ----------------------------------------------------------------------------------


def home_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/")
    assert response.status_code == HTTPStatus.OK
    return len(queries)


def test_the_home_costs_the_same_queries_whatever_the_number_of_orders(admin_client):
    paid(1000, at=timezone.now())
    few = home_queries(admin_client)
    for n in range(40):
        order = paid(
            1000 + n, at=timezone.now() - timedelta(days=n % 35), currency=["usd", "eur"][n % 2]
        )
        Refund.objects.create(order=order, amount=10, currency=order.currency, status="failed")
        ProductFactory(stock=n % 4)
        dispute(order, ["needs_response", "lost"][n % 2])
        books_difference(str(n), resolved=n % 3 == 0)
        Order.objects.filter(pk=order.pk).update(attention="x" * (n % 2))

    many = home_queries(admin_client)

    assert few == many


def test_the_home_is_a_query_per_item_plus_three(django_assert_num_queries):
    user = User.objects.create_superuser("boss", "boss@example.com", "pw")
    paid(1000, at=timezone.now())

    with django_assert_num_queries(len(staff_home.TODOS) + 3):  # sales, tasks, checkpoint
        staff_home.home_read(user=user)
