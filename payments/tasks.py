"""The worker's periodic work: catch up with Stripe, sweep reservations that ran out, look
again at money not settled, compare the books with Stripe's.

Each periodic task enqueues its own next run when it ends (`payments.queue.periodic_next`);
`shop_worker` starts the chains, and restarts one a crash broke.
"""

from __future__ import annotations

from django.conf import settings
from django_tasks import task

from payments import books, money_look, reconcile, settle
from payments.queue import periodic_next


@task()
def stripe_reconcile_periodic() -> None:
    try:
        reconcile.stripe_reconcile()
    finally:
        periodic_next(stripe_reconcile_periodic, every=settings.RECONCILE_EVERY_SECONDS)


@task()
def reservations_sweep_periodic() -> None:
    try:
        settle.reservations_release_expired()
    finally:
        periodic_next(reservations_sweep_periodic, every=settings.SWEEP_EVERY_SECONDS)


@task()
def money_look_periodic() -> None:
    try:
        money_look.money_look()
    finally:
        periodic_next(money_look_periodic, every=settings.MONEY_LOOK_EVERY_SECONDS)


@task()
def books_check_periodic() -> None:
    try:
        books.books_check()
    finally:
        periodic_next(books_check_periodic, every=settings.BOOKS_CHECK_EVERY_SECONDS)


def periodic_start() -> None:
    periodic_next(stripe_reconcile_periodic, every=0)
    periodic_next(reservations_sweep_periodic, every=0)
    periodic_next(money_look_periodic, every=0)
    periodic_next(books_check_periodic, every=settings.BOOKS_CHECK_EVERY_SECONDS)
