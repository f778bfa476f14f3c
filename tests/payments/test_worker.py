"""The background worker as it runs: real `shop_worker` processes on the test database.

It wakes as soon as a task commits; it logs nothing per task below WARNING; several share
the queue and run each task once; a task that runs long hands the rest of its worker's batch
to others and keeps its own claim; and a worker killed with SIGKILL loses its tasks and its
Stripe events to the others within the lease (`WORKER_LEASE_SECONDS`, 2 s here), not
minutes. The database restarting under it is in test_worker_faults.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from payments import webhooks
from payments.emails import order_email
from payments.models import StripeEvent, Worker
from store.models import Product
from tests.factories import OrderFactory, ProductFactory
from tests.support.emulator import wait_until
from tests.support.processes import Process, app_env, database_url, shop_worker
from tests.support.stripe_events import event, product
from tests.support.worker_tasks import hold, marks, touch

pytestmark = pytest.mark.django_db(transaction=True)  # the workers see what tests commit

LEASE = 2  # seconds: a killed worker's claims are anybody's after this
START = 90  # seconds a worker may take to start on a loaded machine


@pytest.fixture(autouse=True)
def database_queue(settings):
    """The production backend: tasks are rows, for the workers to run."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return app_env(
        database_url(),
        WORKER_LEASE_SECONDS=str(LEASE),
        EMAIL_URL=f"filemail:///{tmp_path / 'mail'}",  # django-environ drops one slash
    )


def waited(predicate: Callable[[], Any], *workers: Process, timeout: float) -> Any:
    """`wait_until`, saying what the workers wrote if the condition is not met."""
    try:
        return wait_until(predicate, timeout=timeout)
    except AssertionError:
        for worker in workers:
            print(f"-- worker {worker.pid}:\n{worker.output()}")
        raise


def started(worker: Process) -> Worker:
    """The worker's heartbeat row, once it has one (it is then ready)."""
    return waited(lambda: Worker.objects.filter(pid=worker.pid).first(), worker, timeout=START)


def test_a_committed_email_wakes_a_waiting_worker_at_once(env, tmp_path):
    order = OrderFactory(email="shopper@example.com")
    # A backstop look once an hour: only the commit can wake it within the bound below.
    with shop_worker(env, tmp_path / "worker.log", "--interval", "3600", "--no-periodic") as worker:
        started(worker)

        with transaction.atomic():
            order_email(order=order, template="order_confirmation")

        waited(lambda: list((tmp_path / "mail").glob("*")), worker, timeout=120)
    assert f"order #{order.pk}" in next((tmp_path / "mail").glob("*")).read_text()


def test_the_worker_logs_nothing_per_task_below_warning(tmp_path, capsys, caplog):
    for n in range(3):
        touch.enqueue(path=str(tmp_path / f"job{n}"))

    with mock.patch("payments.management.commands.shop_worker.periodic_start"):
        call_command("shop_worker", "--batch")

    assert all(marks(tmp_path / f"job{n}", "ran") for n in range(3))
    out, err = capsys.readouterr()
    assert "Task id=" not in out + err
    assert not [r for r in caplog.records if r.levelname in {"DEBUG", "INFO"}]


def test_workers_share_the_queue_and_run_each_task_once(env, tmp_path):
    jobs = [tmp_path / f"job{n}" for n in range(60)]
    for job in jobs:
        touch.enqueue(path=str(job))

    with (
        shop_worker(env, tmp_path / "a.log", "--batch-size", "4") as a,
        shop_worker(env, tmp_path / "b.log", "--batch-size", "4") as b,
    ):
        wait_until(lambda: all(marks(job, "ran") for job in jobs), timeout=120)

    assert [len(marks(job, "ran")) for job in jobs] == [1] * len(jobs)
    assert {pid for job in jobs for pid in marks(job, "ran")} <= {a.pid, b.pid}
    assert not DBTaskResult.objects.exclude(status=TaskResultStatus.SUCCESSFUL).filter(
        task_path__startswith="tests."
    )


def test_a_long_task_hands_the_rest_of_its_batch_to_another_worker(env, tmp_path):
    held = tmp_path / "held"
    hold.enqueue(path=str(held))
    quick = [tmp_path / f"quick{n}" for n in range(3)]
    for job in quick:
        touch.enqueue(path=str(job))

    with shop_worker(env, tmp_path / "a.log", "--no-periodic") as a:
        wait_until(lambda: marks(held, "started") == [a.pid], timeout=START)
        assert not any(marks(job, "ran") for job in quick)  # claimed with it, behind it
        with shop_worker(env, tmp_path / "b.log", "--no-periodic") as b:
            waited(lambda: all(marks(job, "ran") == [b.pid] for job in quick), a, b, timeout=60)
        Path(f"{held}.release").touch()
        wait_until(lambda: marks(held, "ran") == [a.pid], timeout=60)


def test_a_killed_workers_task_is_run_by_another_within_seconds(env, tmp_path):
    job = tmp_path / "job"
    hold.enqueue(path=str(job))

    with shop_worker(env, tmp_path / "a.log") as a:
        wait_until(lambda: marks(job, "started") == [a.pid], timeout=START)
        a.kill9()  # holding the task: its row says RUNNING, by a worker that is no more
    Path(f"{job}.release").touch()
    with shop_worker(env, tmp_path / "b.log") as b:
        waited(lambda: marks(job, "ran") == [b.pid], b, timeout=60)

    row = DBTaskResult.objects.get(task_path__endswith="worker_tasks.hold")
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert len(row.worker_ids) == 2
    assert "took over" in b.output()


def test_a_long_task_keeps_its_claim_while_its_worker_beats(env, tmp_path):
    job = tmp_path / "job"
    hold.enqueue(path=str(job))

    with shop_worker(env, tmp_path / "a.log") as a:
        wait_until(lambda: marks(job, "started") == [a.pid], timeout=START)
        running_since = timezone.now()
        with shop_worker(env, tmp_path / "b.log") as b:
            started(b)
            # A's own heartbeat is the clock: three leases pass while it holds the task.
            wait_until(
                lambda: (
                    Worker.objects.get(pid=a.pid).beat_at
                    > running_since + timedelta(seconds=3 * LEASE)
                ),
                timeout=120,
            )
            row = DBTaskResult.objects.get(task_path__endswith="worker_tasks.hold")
            assert row.status == TaskResultStatus.RUNNING
            assert row.worker_ids == [Worker.objects.get(pid=a.pid).id]
            assert marks(job, "started") == [a.pid]
            Path(f"{job}.release").touch()
            wait_until(lambda: marks(job, "ran") == [a.pid], timeout=60)


class FakeStripe(BaseHTTPRequestHandler):
    """Stripe's product endpoint, answering one product as renamed at Stripe."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps(product(self.path.rsplit("/", 1)[-1], name="Renamed at Stripe"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stripe_answering() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def stripe_frozen() -> Iterator[str]:
    """Accepts connections and never answers, as a hung Stripe would."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_killed_workers_stripe_event_is_taken_over_within_seconds(
    env, tmp_path, stripe_frozen, stripe_answering
):
    # An event from the same second as the one applied: the handler asks Stripe, which
    # hangs for worker A.
    teapot = ProductFactory(stripe_id="prod_tie", name="Teapot", stripe_event_created=1_800_000_000)
    payload = event("product.updated", product("prod_tie", name="?"), created=1_800_000_000)
    webhooks.stripe_event_receive(event=payload)

    frozen, answering = (
        env | {"STRIPE_API_BASE": stripe_frozen},
        env | {"STRIPE_API_BASE": stripe_answering},
    )
    with shop_worker(frozen, tmp_path / "a.log", "--no-periodic") as a:
        name = started(a).id
        wait_until(
            lambda: StripeEvent.objects.filter(claimed_by=name, status="processing").exists(),
            timeout=START,
        )
        a.kill9()
    with shop_worker(answering, tmp_path / "b.log", "--no-periodic") as b:
        taker = started(b).id
        waited(
            lambda: StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED, b, timeout=60
        )

    record = StripeEvent.objects.get()
    assert record.attempts == 2
    assert record.claimed_by == taker
    assert Product.objects.get(pk=teapot.pk).name == "Renamed at Stripe"
