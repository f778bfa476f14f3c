"""Books that balance: the shop's orders, refunds and disputes against Stripe's charges,
refunds and disputes, for a period (`python manage.py check_books`, and daily in the worker).

Every difference is reported with both ids (Stripe's object, the shop's order, refund or
dispute): a charge no paid order explains, a paid order without its charge, amounts that
differ, a refund or dispute at Stripe the order lacks (or one the shop has and Stripe does
not), a refund or dispute whose status differs. Differences are kept (`BooksDifference`,
shown in the admin) while they last: a run over a period resolves the ones of that period it
no longer finds, and staff are emailed about new ones only.

What each side says is compared as it is now, object by object (so a refund made after the
period, of a charge made in it, is compared with the run that covers its own creation).
Objects younger than the grace period are left to the next run: their events may still be on
their way. Cost: Stripe's three lists for the period, 100 objects a request, plus one
retrieve per object one side has in the period and the other side's list did not return (an
object made at the edge of the period): bounded by the differences, not by the shop's size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from payments import stripe_api
from payments.emails import staff_email
from payments.models import BooksDifference, Dispute, Order, Refund
from store.money import format_money

logger = logging.getLogger(__name__)

Kind = BooksDifference.Kind
DEFAULT_DAYS = 30
DEFAULT_GRACE = timedelta(minutes=15)
# Orders that took the customer's money (and may have given some back since).
CHARGED = (
    Order.Status.PAID,
    Order.Status.PARTIALLY_REFUNDED,
    Order.Status.REFUNDED,
    Order.Status.REFUND_PENDING,
)
# A shop refund in these says money moved at Stripe (so Stripe must have it).
MOVED = (Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION, Refund.Status.SUCCEEDED)


@dataclass
class Difference:
    kind: str
    message: str
    object_created: datetime
    stripe_id: str = ""
    shop_ref: str = ""
    order_id: int | None = None
    stripe_payment_id: str = ""
    livemode: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.stripe_id}:{self.shop_ref}"

    def __str__(self) -> str:
        ids = f"{self.stripe_id or '(none at Stripe)'} / {self.shop_ref or '(none in the shop)'}"
        return f"{Kind(self.kind).label}: {ids}: {self.message}"


@dataclass
class BooksReport:
    since: datetime
    until: datetime
    differences: list[Difference]
    new: int = 0
    resolved: int = 0


def _when(timestamp: Any) -> datetime:
    return datetime.fromtimestamp(int(timestamp or 0), tz=UTC)


def _money(amount: Any, currency: Any) -> str:
    return format_money(int(amount or 0), str(currency or "usd"))


def books_compare(*, since: datetime, until: datetime) -> list[Difference]:
    """Every difference between Stripe's books and the shop's for objects made in
    [since, until). Reads Stripe; writes nothing."""
    # Stripe's times are whole seconds: the second `until` falls in is the period's.
    gte, lt = int(since.timestamp()), int(until.timestamp()) + 1
    charges = [c for c in stripe_api.charges_created(gte=gte, lt=lt) if c.get("paid")]
    refunds = list(stripe_api.refunds_created(gte=gte, lt=lt))
    disputes = list(stripe_api.disputes_created(gte=gte, lt=lt))
    intents = {
        stripe_api.stripe_id_of(o.get("payment_intent")) for o in charges + refunds + disputes
    }
    orders = {
        order.stripe_payment_intent_id: order
        for order in Order.objects.filter(stripe_payment_intent_id__in=intents - {""})
    }
    found: list[Difference] = []
    found += _charges(charges, orders)
    found += _orders_without_charges(since, until, charges)
    found += _compare(
        objects=refunds,
        rows=Refund.objects.select_related("order").exclude(amount=0),
        made_in=Refund.objects.filter(created_at__gte=since, created_at__lt=until),
        orders=orders,
        kinds=(
            Kind.REFUND_MISSING_IN_SHOP,
            Kind.REFUND_MISSING_AT_STRIPE,
            Kind.REFUND_STATUS_DIFFERS,
        ),
        retrieve=stripe_api.refund_retrieve,
    )
    found += _compare(
        objects=disputes,
        rows=Dispute.objects.select_related("order"),
        made_in=Dispute.objects.filter(opened_at__gte=since, opened_at__lt=until),
        orders=orders,
        kinds=(
            Kind.DISPUTE_MISSING_IN_SHOP,
            Kind.DISPUTE_MISSING_AT_STRIPE,
            Kind.DISPUTE_STATUS_DIFFERS,
        ),
        retrieve=stripe_api.dispute_retrieve,
    )
    return found


def _charges(charges: list[dict[str, Any]], orders: dict[str, Order]) -> list[Difference]:
    found = []
    for charge in charges:
        intent = stripe_api.stripe_id_of(charge.get("payment_intent"))
        order = orders.get(intent)
        amount = _money(charge.get("amount"), charge.get("currency"))
        if order is None or order.status not in CHARGED:
            why = f"{order} is {order.get_status_display().lower()}" if order else "no order has it"
            found.append(
                _seen(
                    charge,
                    kind=Kind.CHARGE_WITHOUT_ORDER,
                    message=f"Stripe charged {amount} (payment {intent or '-'}): {why}.",
                    shop_ref=f"order #{order.pk}" if order else "",
                    order_id=order.pk if order else None,
                )
            )
        elif int(charge.get("amount") or 0) != order.amount_total:
            found.append(
                _seen(
                    charge,
                    kind=Kind.AMOUNT_DIFFERS,
                    message=f"Stripe charged {amount}; {order} says "
                    f"{_money(order.amount_total, order.currency)}.",
                    shop_ref=f"order #{order.pk}",
                    order_id=order.pk,
                )
            )
    return found


def _orders_without_charges(
    since: datetime, until: datetime, charges: list[dict[str, Any]]
) -> list[Difference]:
    """Orders paid in the period whose payment Stripe's list of the period does not have:
    asked one by one (a charge made before the period, e.g. a bank transfer that arrived
    later, is not a difference)."""
    listed = {stripe_api.stripe_id_of(c.get("payment_intent")) for c in charges}
    found = []
    for order in Order.objects.filter(
        status__in=CHARGED, amount_total__gt=0, paid_at__gte=since, paid_at__lt=until
    ).exclude(stripe_payment_intent_id__in=listed - {""}):
        intent = order.stripe_payment_intent_id
        received = 0
        if intent:
            try:
                received = int(
                    stripe_api.payment_intent_retrieve(intent).get("amount_received") or 0
                )
            except stripe_api.InvalidRequestError:
                received = 0
        if received == order.amount_total:
            continue
        paid = order.paid_at or order.created_at
        found.append(
            Difference(
                kind=Kind.ORDER_WITHOUT_CHARGE if not received else Kind.AMOUNT_DIFFERS,
                message=f"{order} is paid ({_money(order.amount_total, order.currency)}); "
                f"Stripe received {_money(received, order.currency)} for payment {intent or '-'}.",
                stripe_id=intent,
                shop_ref=f"order #{order.pk}",
                order_id=order.pk,
                stripe_payment_id=intent,
                object_created=paid,
            )
        )
    return found


def _ours(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("amazin_refund") or "")


def _row_id(row: Refund | Dispute) -> str:
    return (row.stripe_refund_id or "") if isinstance(row, Refund) else row.stripe_dispute_id


def _compare(
    *,
    objects: list[dict[str, Any]],
    rows: Any,
    made_in: Any,
    orders: dict[str, Order],
    kinds: tuple[str, str, str],
    retrieve: Callable[[str], dict[str, Any]],
) -> list[Difference]:
    """Stripe's refunds (or disputes) of the period against the shop's, both ways."""
    noun = "refund" if kinds[0] == Kind.REFUND_MISSING_IN_SHOP else "dispute"
    field = "stripe_refund_id" if noun == "refund" else "stripe_dispute_id"
    by_id = {
        _row_id(row): row for row in rows.filter(**{f"{field}__in": [o["id"] for o in objects]})
    }
    # A refund of ours whose answer was lost has no Stripe id yet: found by our metadata.
    ours_ids = [_ours(o) for o in objects if _ours(o).isdigit()] if noun == "refund" else []
    by_ours = {str(row.pk): row for row in rows.filter(pk__in=[int(i) for i in ours_ids])}
    found: list[Difference] = []
    matched: set[int] = set()
    for obj in objects:
        row = by_id.get(obj["id"]) or by_ours.get(_ours(obj))
        if row is not None:
            matched.add(row.pk)
        found += _pair(obj, row, orders, kinds, noun)
    for row in made_in.select_related("order").exclude(pk__in=matched):
        if isinstance(row, Refund) and (row.amount == 0 or row.status not in MOVED):
            continue  # requested, failed or canceled: no money moved, nothing to compare
        there = _retrieved(retrieve, _row_id(row))
        if there is not None:
            found += _pair(there, row, orders, kinds, noun)
            continue
        found.append(
            Difference(
                kind=kinds[1],
                message=f"{row} says {_money(row.amount, row.currency)}, "
                f"{row.get_status_display().lower()}; Stripe has no such {noun}.",
                stripe_id=_row_id(row),
                shop_ref=f"{noun} #{row.pk}",
                order_id=row.order_id,
                stripe_payment_id=row.order.stripe_payment_intent_id,
                object_created=_row_created(row),
            )
        )
    return found


def _retrieved(retrieve: Callable[[str], dict[str, Any]], stripe_id: str) -> dict[str, Any] | None:
    """Stripe's object, or None if Stripe has no such object."""
    if not stripe_id:
        return None
    try:
        return retrieve(stripe_id)
    except stripe_api.InvalidRequestError as exc:
        if exc.code == "resource_missing":
            return None
        raise


def _row_created(row: Refund | Dispute) -> datetime:
    if isinstance(row, Refund):
        return row.created_at
    return row.opened_at or row.recorded_at


def _pair(
    obj: dict[str, Any],
    row: Refund | Dispute | None,
    orders: dict[str, Order],
    kinds: tuple[str, str, str],
    noun: str,
) -> list[Difference]:
    missing_in_shop, _missing_at_stripe, status_differs = kinds
    intent = stripe_api.stripe_id_of(obj.get("payment_intent"))
    amount = _money(obj.get("amount"), obj.get("currency"))
    if row is None:
        order = orders.get(intent)
        where = f"{order} does not have it" if order else "no order has its payment"
        return [
            _seen(
                obj,
                kind=missing_in_shop,
                message=f"Stripe's {noun} of {amount} ({obj.get('status')}, payment "
                f"{intent or '-'}): {where}.",
                shop_ref=f"order #{order.pk}" if order else "",
                order_id=order.pk if order else None,
            )
        ]
    ref, found = f"{noun} #{row.pk}", []
    if int(obj.get("amount") or 0) != row.amount:
        found.append(
            _seen(
                obj,
                kind=Kind.AMOUNT_DIFFERS,
                message=f"Stripe's {noun} is {amount}; the shop's "
                f"{_money(row.amount, row.currency)}.",
                shop_ref=ref,
                order_id=row.order_id,
            )
        )
    if (obj.get("status") or "") != row.status:
        found.append(
            _seen(
                obj,
                kind=status_differs,
                message=f"Stripe says {obj.get('status')}; the shop says {row.status}.",
                shop_ref=ref,
                order_id=row.order_id,
            )
        )
    return found


def _seen(
    obj: dict[str, Any], *, kind: str, message: str, shop_ref: str, order_id: int | None
) -> Difference:
    """A difference about Stripe's object `obj`."""
    return Difference(
        kind=kind,
        message=message,
        object_created=_when(obj.get("created")),
        stripe_id=obj["id"],
        shop_ref=shop_ref,
        order_id=order_id,
        stripe_payment_id=stripe_api.stripe_id_of(obj.get("payment_intent")),
        livemode=bool(obj.get("livemode")),
    )


def books_check(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> BooksReport:
    """Compare the books for [since, until) (default: the 30 days before now - grace),
    record what differs, resolve what no longer does, email staff about new differences."""
    now = timezone.now()
    until = until or now - grace
    since = since or until - timedelta(days=DEFAULT_DAYS)
    found = books_compare(since=since, until=until)
    report = BooksReport(since=since, until=until, differences=found)
    new = []
    with transaction.atomic():
        still = {d.key for d in found}
        report.resolved = (
            BooksDifference.objects.filter(
                resolved_at__isnull=True, object_created__gte=since, object_created__lt=until
            )
            .exclude(key__in=still)
            .update(resolved_at=now)
        )
        for difference in found:
            fields = {
                "kind": difference.kind,
                "stripe_id": difference.stripe_id,
                "shop_ref": difference.shop_ref,
                "order_id": difference.order_id,
                "stripe_payment_id": difference.stripe_payment_id,
                "livemode": difference.livemode,
                "message": difference.message,
                "object_created": difference.object_created,
                "last_seen": now,
            }
            if BooksDifference.objects.filter(key=difference.key, resolved_at__isnull=True).update(
                **fields
            ):
                continue
            try:
                with transaction.atomic():
                    BooksDifference.objects.create(key=difference.key, **fields)
            except IntegrityError:  # another run recorded it just now
                continue
            new.append(difference)
        report.new = len(new)
        if new:
            staff_email(
                subject=f"[Amazin] {len(new)} new difference(s) between the books and Stripe's",
                body="\n".join(str(d) for d in new),
            )
    if found:
        logger.warning("check_books: %s difference(s), %s new", len(found), len(new))
    return report
