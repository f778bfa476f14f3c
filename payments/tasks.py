"""The worker's periodic work: catch up with Stripe, sweep reservations that ran out, look
again at money not settled, compare the books with Stripe's.

Each periodic task enqueues its own next run when it ends (`payments.queue.periodic_next`);
`shop_worker` starts the chains, and restarts one a crash broke.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django_tasks import task
from django_tasks.base import Task

from payments import books, money_look, reconcile, settle, stripe_api
from payments.queue import periodic_next

logger = logging.getLogger(__name__)


@contextmanager
def next_run(periodic: Task[Any, Any], *, every: float) -> Iterator[None]:
    """Run the body, then enqueue the task's next run whatever happened. Stripe out of reach
    is a warning line, not a failed task with its traceback: the next run asks again (and
    the staff home shows how old the last good reconciliation is)."""
    try:
        yield
    except stripe_api.APIConnectionError as exc:
        logger.warning(
            "%s: Stripe out of reach, the next run tries again: %s", periodic.module_path, exc
        )
    finally:
        periodic_next(periodic, every=every)


@task()
def stripe_reconcile_periodic() -> None:
    with next_run(stripe_reconcile_periodic, every=settings.RECONCILE_EVERY_SECONDS):
        reconcile.stripe_reconcile()


@task()
def reservations_sweep_periodic() -> None:
    with next_run(reservations_sweep_periodic, every=settings.SWEEP_EVERY_SECONDS):
        settle.reservations_release_expired()


@task()
def money_look_periodic() -> None:
    with next_run(money_look_periodic, every=settings.MONEY_LOOK_EVERY_SECONDS):
        money_look.money_look()


@task()
def books_check_periodic() -> None:
    with next_run(books_check_periodic, every=settings.BOOKS_CHECK_EVERY_SECONDS):
        books.books_check()


def periodic_start() -> None:
    periodic_next(stripe_reconcile_periodic, every=0)
    periodic_next(reservations_sweep_periodic, every=0)
    periodic_next(money_look_periodic, every=0)
    periodic_next(books_check_periodic, every=settings.BOOKS_CHECK_EVERY_SECONDS)
