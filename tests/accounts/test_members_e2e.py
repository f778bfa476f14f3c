"""Buying the pass for real: the app talks to the Stripe emulator over HTTP, the emulator
pays and sends its signed webhooks to the app's live server."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts import services
from accounts.models import Entitlement
from payments.models import Order
from tests.support.emulator import running_emulator, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]


class WebhookGate:
    """Sits between the emulator and the app and holds webhooks until `open()`.

    Lets a test decide that the success page runs before the webhook, instead of hoping.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.opened = threading.Event()
        self.held = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gate.held += 1
                if not gate.opened.wait(timeout=30):
                    self.send_response(HTTPStatus.SERVICE_UNAVAILABLE)
                    self.end_headers()
                    return
                request = urllib.request.Request(
                    gate.target,
                    data=body,
                    method="POST",
                    headers={
                        "Content-Type": "application/json",
                        "Stripe-Signature": self.headers.get("Stripe-Signature", ""),
                    },
                )
                try:
                    with urllib.request.urlopen(request, timeout=20) as response:
                        status = response.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def open(self) -> None:
        self.opened.set()

    def __enter__(self) -> WebhookGate:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gate(live_server) -> Iterator[WebhookGate]:
    with WebhookGate(f"{live_server.url}/stripe/webhook/") as gate:
        yield gate


@pytest.fixture
def emulator(settings, gate):
    with running_emulator(forward_to=gate.url, webhook_secret=settings.STRIPE_WEBHOOK_SECRET) as em:
        settings.STRIPE_API_BASE = em.api_base
        settings.STRIPE_SECRET_KEY = em.api_key
        settings.SITE_URL = "http://testserver"
        yield em


@pytest.fixture
def access_pass(emulator, gate):
    """The pass created in (emulated) Stripe and synced to the app by its webhooks."""
    stripe = emulator.client()
    product = stripe.v1.products.create(params={"name": "Members' pass"})
    stripe.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 900,
            "currency": "usd",
            "lookup_key": "amazin_access_pass",
        }
    )
    stripe.v1.products.update(product.id, params={"description": "Entry to the members' area"})
    gate.open()
    emulator.flush()
    return wait_until(lambda: services.access_price(), message="the pass never synced")


def _buy(client, user):
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post("/dashboard/purchase/")
    assert response.status_code == HTTPStatus.SEE_OTHER
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def test_purchase_pay_webhook_entitlement_dashboard(client, make_user, emulator, access_pass):
    user = make_user()
    session_id = _buy(client, user)

    paid = emulator.pay(session_id, email=user.email)
    emulator.flush()

    assert paid["paid"], paid
    entitlement = wait_until(
        lambda: Entitlement.objects.live().filter(user=user).first(),
        message="the webhook did not grant access",
    )
    order = Order.objects.get(stripe_session_id=session_id)
    assert (order.status, order.kind, order.amount_total) == ("paid", "access", 900)
    assert entitlement.order == order
    assert client.get("/dashboard/").status_code == HTTPStatus.OK


def test_a_second_purchase_reuses_the_open_session(client, make_user, emulator, access_pass):
    user = make_user()
    first = _buy(client, user)

    second = _buy(client, user)

    assert second == first
    assert Order.objects.filter(user=user).count() == 1


def test_a_paid_member_buying_again_goes_to_the_dashboard(client, make_user, emulator, access_pass):
    user = make_user()
    emulator.pay(_buy(client, user), email=user.email)
    emulator.flush()
    wait_until(lambda: services.user_has_access(user))

    response = client.post("/dashboard/purchase/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/dashboard/"
    assert Order.objects.filter(user=user).count() == 1


def test_success_page_first_webhook_second_grants_once(
    client, make_user, emulator, gate, access_pass
):
    gate.opened.clear()  # hold the webhooks from now on
    user = make_user()
    session_id = _buy(client, user)
    emulator.pay(session_id, email=user.email)

    success = client.get(f"/checkout/success/?session_id={session_id}")

    assert success.status_code == HTTPStatus.OK
    assert Entitlement.objects.filter(user=user).count() == 1
    wait_until(lambda: gate.held >= 1, message="the emulator sent no webhook")
    gate.open()
    emulator.flush()
    assert Entitlement.objects.filter(user=user).count() == 1
    assert Order.objects.get(stripe_session_id=session_id).status == "paid"
    assert client.get("/dashboard/").status_code == HTTPStatus.OK


def test_a_refund_in_stripe_revokes_access(client, make_user, emulator, access_pass):
    user = make_user()
    session_id = _buy(client, user)
    emulator.pay(session_id, email=user.email)
    emulator.flush()
    wait_until(lambda: services.user_has_access(user))
    order = Order.objects.get(stripe_session_id=session_id)

    emulator.client().v1.refunds.create(params={"payment_intent": order.stripe_payment_intent_id})
    emulator.flush()

    wait_until(lambda: not services.user_has_access(user), message="the refund did not revoke")
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert client.get("/dashboard/")["Location"] == "/"
