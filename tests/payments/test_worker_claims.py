"""Who may take a Stripe event or a task another claimed, in-process (the processes
themselves, killed with SIGKILL, are in test_worker.py): a worker whose heartbeat stopped
loses its claims at once; a live one keeps them; anyone else's claim (the admin's replay)
lasts STALE_CLAIM; and a task that met a database error runs again instead of failing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import DatabaseError, OperationalError, connection
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from payments import heartbeat, webhooks
from payments.models import StripeEvent, Worker
from payments.worker import Worker as QueueWorker
from payments.worker import database_usable
from store.models import Product
from tests.support.stripe_events import event, product
from tests.support.worker_tasks import touch

pytestmark = pytest.mark.django_db


def worker_row(name: str, *, beat_ago: float) -> Worker:
    beat = timezone.now() - timedelta(seconds=beat_ago)
    return Worker.objects.create(id=name, host="h", pid=1, started_at=beat, beat_at=beat)


def held_event(*, by: str, ago: timedelta = timedelta(seconds=1)) -> StripeEvent:
    record = webhooks.stripe_event_record(
        event=event("product.created", product("prod_held", name="Teapot"))
    )
    StripeEvent.objects.filter(pk=record.pk).update(
        status=StripeEvent.Status.PROCESSING, claimed_by=by, claimed_at=timezone.now() - ago
    )
    return StripeEvent.objects.get(pk=record.pk)


@pytest.fixture
def as_worker(monkeypatch) -> Iterator[str]:
    """This process runs as the worker `me` (alive)."""
    worker_row("me", beat_ago=0)
    monkeypatch.setattr(heartbeat, "_current", "me")
    yield "me"


def test_an_event_held_by_a_worker_whose_heartbeat_stopped_is_taken_over(settings):
    settings.WORKER_LEASE_SECONDS = 10
    worker_row("dead", beat_ago=11)
    record = held_event(by="dead")

    record = webhooks.stripe_event_process(record=record)

    assert record.status == StripeEvent.Status.PROCESSED
    assert record.attempts == 1
    assert Product.objects.get(stripe_id="prod_held").name == "Teapot"


def test_an_event_held_by_a_worker_that_beats_is_left_to_it(settings):
    settings.WORKER_LEASE_SECONDS = 10
    worker_row("alive", beat_ago=9)
    record = held_event(by="alive", ago=timedelta(minutes=4))

    record = webhooks.stripe_event_process(record=record)

    assert record.status == StripeEvent.Status.PROCESSING
    assert not Product.objects.filter(stripe_id="prod_held").exists()


def test_an_event_held_by_no_worker_is_taken_only_after_the_stale_claim():
    fresh = held_event(by="", ago=webhooks.STALE_CLAIM - timedelta(seconds=30))
    assert webhooks.stripe_event_process(record=fresh).status == StripeEvent.Status.PROCESSING

    StripeEvent.objects.filter(pk=fresh.pk).update(
        claimed_at=timezone.now() - webhooks.STALE_CLAIM - timedelta(seconds=1)
    )

    assert webhooks.stripe_event_process(record=fresh).status == StripeEvent.Status.PROCESSED


def test_a_worker_takes_again_an_event_its_own_earlier_run_left_unfinished(as_worker):
    record = held_event(by=as_worker)  # a database error cut that run short

    record = webhooks.stripe_event_process(record=record)

    assert record.status == StripeEvent.Status.PROCESSED
    assert record.claimed_by == as_worker


@pytest.fixture
def database_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}


@pytest.mark.django_db(transaction=True)
def test_a_task_that_meets_a_database_error_runs_again_rather_than_failing(
    database_queue, tmp_path
):
    touch.enqueue(path=str(tmp_path / "job"))
    restart = OperationalError("terminating connection due to administrator command")

    with mock.patch("tests.support.worker_tasks.mark", side_effect=restart):
        call_command("shop_worker", "--batch", "--no-periodic")

    row = DBTaskResult.objects.get(task_path__endswith="worker_tasks.touch")
    assert row.status == TaskResultStatus.READY
    assert row.run_after > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_a_task_that_keeps_meeting_database_errors_backs_off_then_fails(
    database_queue, tmp_path, caplog
):
    touch.enqueue(path=str(tmp_path / "job"))
    timeout = OperationalError("canceling statement due to statement timeout")
    waited = []  # each wait between its bounds: measured from before and after the run

    with mock.patch("tests.support.worker_tasks.mark", side_effect=timeout):
        for _ in range(10):
            before = timezone.now()
            call_command("shop_worker", "--batch", "--no-periodic")
            after = timezone.now()
            row = DBTaskResult.objects.get()
            if row.status == TaskResultStatus.READY:
                waited.append((row.run_after - after, row.run_after - before))
                DBTaskResult.objects.update(run_after=timezone.now())  # the back-off passes

    waits = [2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert len(waited) == len(waits)
    for (least, most), wait in zip(waited, waits, strict=True):
        assert least <= timedelta(seconds=wait) <= most
    row = DBTaskResult.objects.get()
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == "django.db.utils.OperationalError"
    assert len(row.worker_ids) == 10
    assert "gave up after 10 database errors" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_task_cut_off_by_a_database_outage_is_never_failed_for_it(database_queue, tmp_path):
    touch.enqueue(path=str(tmp_path / "job"))
    DBTaskResult.objects.update(return_value={"database_errors": 9})  # one short of failing
    worker = QueueWorker()
    worker.heartbeat.name = "me"
    (row,) = worker._claim()
    outage = OperationalError("connection refused")

    with (
        mock.patch("tests.support.worker_tasks.mark", side_effect=outage),
        mock.patch("payments.worker.database_usable", return_value=False),
        pytest.raises(OperationalError),
    ):
        worker._run(row)

    assert DBTaskResult.objects.get().status == TaskResultStatus.RUNNING  # taken over later


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_running_tasks_go_back_to_the_queue(database_queue, settings, tmp_path):
    settings.WORKER_LEASE_SECONDS = 10
    worker_row("dead", beat_ago=11)
    worker_row("alive", beat_ago=1)
    touch.enqueue(path=str(tmp_path / "orphan"))
    touch.enqueue(path=str(tmp_path / "held"))
    orphan, held = DBTaskResult.objects.order_by("enqueued_at")
    DBTaskResult.objects.filter(pk=orphan.pk).update(status="RUNNING", worker_ids=["dead"])
    DBTaskResult.objects.filter(pk=held.pk).update(status="RUNNING", worker_ids=["alive"])

    taken = QueueWorker().take_over()

    assert taken == 1
    assert DBTaskResult.objects.get(pk=orphan.pk).status == TaskResultStatus.READY
    assert DBTaskResult.objects.get(pk=held.pk).status == TaskResultStatus.RUNNING


def test_a_database_error_under_a_handler_gives_the_event_back(as_worker):
    record = webhooks.stripe_event_record(
        event=event("product.created", product("prod_cut", name="Teapot"))
    )
    restart = OperationalError("terminating connection due to administrator command")

    with (
        mock.patch("payments.catalog.product_apply", side_effect=restart),
        pytest.raises(OperationalError),
    ):
        webhooks.stripe_event_process(record=record)

    record.refresh_from_db()
    assert record.status == StripeEvent.Status.RECEIVED  # anybody's, for the task's next run
    assert webhooks.stripe_event_process(record=record).status == StripeEvent.Status.PROCESSED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the connection really dies: no test transaction
def test_a_connection_killed_under_a_handler_gives_the_event_back_on_a_new_one(
    as_worker, monkeypatch
):
    worker_row("other", beat_ago=0)
    record = webhooks.stripe_event_record(
        event=event("product.created", product("prod_cut", name="Teapot"))
    )

    def connection_killed(**kwargs: object) -> None:  # a restart, or pg_terminate_backend
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with (
        mock.patch("payments.catalog.product_apply", side_effect=connection_killed),
        pytest.raises(DatabaseError),
    ):
        webhooks.stripe_event_process(record=record)
    assert database_usable()  # so the worker queues the task again, for any worker

    record.refresh_from_db()
    assert record.status == StripeEvent.Status.RECEIVED
    monkeypatch.setattr(heartbeat, "_current", "other")
    assert webhooks.stripe_event_process(record=record).status == StripeEvent.Status.PROCESSED


@pytest.mark.django_db(transaction=True)
def test_two_workers_taking_over_the_same_task_put_it_back_once(database_queue, settings, tmp_path):
    settings.WORKER_LEASE_SECONDS = 10
    worker_row("dead", beat_ago=11)
    worker_row("third", beat_ago=1)
    touch.enqueue(path=str(tmp_path / "orphan"))
    DBTaskResult.objects.update(status="RUNNING", worker_ids=["dead"])
    first, second, third = QueueWorker(), QueueWorker(), QueueWorker()
    third.heartbeat.name = "third"
    read = second._orphans

    def first_and_third_meanwhile() -> dict[tuple[str, ...], list[object]]:
        orphans = read()  # the second has read the dead worker's task; before it puts it back:
        assert first.take_over() == 1
        assert len(third._claim()) == 1
        return orphans

    with mock.patch.object(second, "_orphans", first_and_third_meanwhile):
        taken = second.take_over()

    assert taken == 0
    row = DBTaskResult.objects.get()
    assert (row.status, row.worker_ids) == (TaskResultStatus.RUNNING, ["dead", "third"])
