"""The staff home (the admin's index): what the shop sold, and what needs doing today.

Sales are money net of refunds, per currency: the orders paid on a day, less what has been
refunded of them since (`Order.amount_refunded`: refunds that succeeded, Stripe's word) and
what disputes the shop lost took back (`Order.amount_disputed`). One query reads every day
of the chart (and of the month, whichever starts first), aggregated in the database from
the `order_paid_at` index.

The to-do list is `TODOS`: each item is a label, one counting query and the admin list
that shows what it counts (the same filter, so the number and the list agree), visible to
whoever holds its permission. A new item is one more `Todo(...)` in that list, where it
should appear.
The worker's health (the oldest task waiting, the last reconciliation) is two more queries.
A home of N items costs N + 3 queries, whatever the number of orders (a test pins it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.urls import reverse
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from payments.models import BooksDifference, Dispute, Order, Refund, StripeCheckpoint, StripeEvent
from payments.reconcile import CHECKPOINT
from store.models import Product

CHART_DAYS = 30
# The worker is late when its oldest due task has waited this long, or when reconciliation
# has not run for this many of its periods.
TASK_WAIT_WARNING = timedelta(minutes=5)
RECONCILE_PERIODS_WARNING = 3

# -- what each to-do item counts (the admin's filters use the same querysets) -----------


def orders_to_ship() -> QuerySet[Order]:
    """Goods paid for (and not all refunded) that have not left yet."""
    return Order.objects.filter(
        kind=Order.Kind.GOODS, shipped_at__isnull=True, status__in=Order.PAID_STATUSES
    )


def orders_needing_staff() -> QuerySet[Order]:
    """Orders whose money needs a person (a refund failed, a dispute opened or closed) until
    staff mark it dealt with (`Order.attention`, payments.emails.staff_alert)."""
    return Order.objects.exclude(attention="")


# Not final at Stripe (requested with no answer yet, pending, or needing action), and what
# counts as asked again after a failure: one of those, or one that succeeded.
REFUND_UNDER_WAY = Refund.OPEN
REFUND_COUNTED = (*Refund.OPEN, Refund.Status.SUCCEEDED)


def refunds_to_check() -> QuerySet[Refund]:
    """Refunds whose money has not moved: still under way at Stripe, or failed with no
    refund of that order asked for since (a failure staff have retried is done with)."""
    retried = Refund.objects.filter(
        order=OuterRef("order"), created_at__gt=OuterRef("created_at"), status__in=REFUND_COUNTED
    )
    return Refund.objects.alias(retried=Exists(retried)).filter(
        Q(status__in=REFUND_UNDER_WAY) | Q(status=Refund.Status.FAILED, retried=False)
    )


def disputes_open() -> QuerySet[Dispute]:
    """Disputes Stripe has not closed: a response due, under review, an inquiry or appeal."""
    return Dispute.objects.exclude(status__in=Dispute.CLOSED)


def books_differing() -> QuerySet[BooksDifference]:
    """What check_books last found different from Stripe's books and has not found since."""
    return BooksDifference.objects.filter(resolved_at__isnull=True)


def events_failed() -> QuerySet[StripeEvent]:
    return StripeEvent.objects.filter(status=StripeEvent.Status.FAILED)


def products_low_on_stock() -> QuerySet[Product]:
    """Products on sale with LOW_STOCK_THRESHOLD units or fewer."""
    return Product.objects.filter(active=True, stock__lte=settings.LOW_STOCK_THRESHOLD)


# -- the to-do list ----------------------------------------------------------------------


@dataclass(frozen=True)
class Todo:
    label: str
    count: Callable[[], int]  # one query
    url: Callable[[], str]  # the admin list that shows what was counted
    permission: str  # who sees the item: "app.codename"


@dataclass(frozen=True)
class TodoShown:
    label: str
    count: int
    url: str


def _changelist(name: str, query: str) -> Callable[[], str]:
    return lambda: f"{reverse(f'admin:{name}_changelist')}?{query}"


TODOS: list[Todo] = [
    Todo(
        "Orders to ship",
        lambda: orders_to_ship().count(),
        _changelist("payments_order", "shipped=no"),
        "payments.view_order",
    ),
    Todo(
        "Orders that need staff",
        lambda: orders_needing_staff().count(),
        _changelist("payments_order", "money=attention"),
        "payments.view_order",
    ),
    Todo(
        "Refunds pending or failed",
        lambda: refunds_to_check().count(),
        _changelist("payments_refund", "attention=yes"),
        "payments.view_refund",
    ),
    Todo(
        "Open disputes",
        lambda: disputes_open().count(),
        _changelist("payments_dispute", "open=yes"),
        "payments.view_dispute",
    ),
    Todo(
        "Books that differ from Stripe's",
        lambda: books_differing().count(),
        _changelist("payments_booksdifference", "resolved_at__isempty=1"),
        "payments.view_booksdifference",
    ),
    Todo(
        "Products low on stock",
        lambda: products_low_on_stock().count(),
        _changelist("store_product", "low_stock=low&active__exact=1"),
        "store.view_product",
    ),
    Todo(
        "Stripe events that failed",
        lambda: events_failed().count(),
        _changelist("payments_stripeevent", "status__exact=failed"),
        "payments.view_stripeevent",
    ),
]


# -- the worker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerHealth:
    now: datetime
    oldest_waiting_since: datetime | None  # when the oldest task that is due became due
    last_reconciled: datetime | None  # when reconciliation with Stripe last completed

    @property
    def waiting(self) -> timedelta | None:
        since = self.oldest_waiting_since
        return None if since is None else max(self.now - since, timedelta(0))

    @property
    def tasks_late(self) -> bool:
        return self.waiting is not None and self.waiting >= TASK_WAIT_WARNING

    @property
    def reconcile_late(self) -> bool:
        every = timedelta(seconds=settings.RECONCILE_EVERY_SECONDS * RECONCILE_PERIODS_WARNING)
        return self.last_reconciled is None or self.now - self.last_reconciled > every

    @property
    def healthy(self) -> bool:
        return not (self.tasks_late or self.reconcile_late)


def worker_health(*, now: datetime) -> WorkerHealth:
    """Two queries: the oldest due task (a task with no `run_after` is due since it was
    enqueued), and the reconciliation checkpoint."""
    due_since = Case(When(run_after=get_date_max(), then=F("enqueued_at")), default=F("run_after"))
    oldest = (
        DBTaskResult.objects.filter(status=TaskResultStatus.READY)
        .filter(Q(run_after=get_date_max()) | Q(run_after__lte=now))
        .aggregate(since=Min(due_since))["since"]
    )
    position = (
        StripeCheckpoint.objects.filter(name=CHECKPOINT).values_list("position", flat=True).first()
    )
    last = None
    if position:  # the run that set it started RECONCILE_GRACE_SECONDS after this position
        at = position + settings.RECONCILE_GRACE_SECONDS
        last = datetime.fromtimestamp(at, tz=UTC)
    return WorkerHealth(now=now, oldest_waiting_since=oldest, last_reconciled=last)


# -- sales --------------------------------------------------------------------------------


@dataclass
class Figures:
    orders: int = 0
    net: int = 0  # paid less refunded, less lost in disputes
    gross: int = 0  # paid (counted for today and the month; a chart day has its net only)
    refunded: int = 0
    disputed: int = 0  # taken back by disputes the shop lost


@dataclass
class Sales:
    """One currency's sales: today, this month, and each of the chart's days (oldest first)."""

    currency: str
    today: Figures = field(default_factory=Figures)
    month: Figures = field(default_factory=Figures)
    days: list[tuple[date, Figures]] = field(default_factory=list)


def _refunded() -> Case:
    # A fully refunded order gave everything back, whatever its refunds' rows say.
    return Case(
        When(status=Order.Status.REFUNDED, then=F("amount_total")), default=F("amount_refunded")
    )


def _midnight(day: date) -> datetime:
    """The day's start in the shop's time zone (right across a daylight-saving change)."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def sales_read(*, today: date) -> list[Sales]:
    """Each currency's sales (most sold in the chart's days first): one query.

    Each order falls in the day whose [midnight, next midnight) in the shop's time zone holds
    its `paid_at`: the database compares the indexed column with those bounds and never
    converts a row's time (SQLite would call Python for each row to find its local date).
    Days of the month before the chart's first are one more bucket (-1).
    """
    first_of_month = today.replace(day=1)
    chart_start = today - timedelta(days=CHART_DAYS - 1)
    days = [chart_start + timedelta(days=n) for n in range(CHART_DAYS)]
    bounds = [_midnight(day) for day in [*days, today + timedelta(days=1)]]
    month_start = _midnight(first_of_month)
    bucket = Case(
        When(paid_at__lt=bounds[0], then=Value(-1)),
        *(When(paid_at__lt=bounds[n + 1], then=Value(n)) for n in range(CHART_DAYS)),
        output_field=IntegerField(),
    )
    rows = (
        Order.objects.filter(paid_at__gte=min(bounds[0], month_start), paid_at__lt=bounds[-1])
        .annotate(bucket=bucket)
        .values("currency", "bucket")
        .annotate(
            orders=Count("id"),
            gross=Sum("amount_total"),
            refunded=Sum(_refunded()),
            disputed=Sum("amount_disputed"),
        )
        .order_by()
    )
    found: dict[str, dict[int, Figures]] = {}
    for row in rows:
        gross, refunded, disputed = row["gross"] or 0, row["refunded"] or 0, row["disputed"] or 0
        figures = Figures(row["orders"], gross - refunded - disputed, gross, refunded, disputed)
        found.setdefault(row["currency"].lower(), {})[row["bucket"]] = figures
    sales = []
    for currency, by_bucket in found.items():
        shown = Sales(currency=currency, today=by_bucket.get(CHART_DAYS - 1, Figures()))
        in_month = [f for n, f in by_bucket.items() if n < 0 or days[n] >= first_of_month]
        shown.month = Figures(
            orders=sum(f.orders for f in in_month),
            net=sum(f.net for f in in_month),
            gross=sum(f.gross for f in in_month),
            refunded=sum(f.refunded for f in in_month),
            disputed=sum(f.disputed for f in in_month),
        )
        shown.days = [(day, by_bucket.get(n, Figures())) for n, day in enumerate(days)]
        sales.append(shown)
    sales.sort(key=lambda s: (-sum(f.net for _, f in s.days), s.currency))
    return sales


# -- the home -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    today: date
    sales: list[Sales]
    todos: list[TodoShown]
    worker: WorkerHealth


def home_read(*, user: object, now: datetime | None = None) -> Home:
    """What the staff home shows `user` (sales and the items their permissions allow)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    has_perm: Callable[[str], bool] = getattr(user, "has_perm", lambda _: False)
    todos = [
        TodoShown(todo.label, todo.count(), todo.url())
        for todo in TODOS
        if has_perm(todo.permission)
    ]
    sales = sales_read(today=today) if has_perm("payments.view_order") else []
    return Home(today=today, sales=sales, todos=todos, worker=worker_health(now=now))
