"""The whole purchase over real HTTP: a shopper's HTTP client, the app on live_server, the
Stripe emulator in its own process calling back with signed webhooks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
import requests
from django.core import mail
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from cart.models import CartItem
from payments import sessions, settle, stripe_api
from payments.models import Order, StripeEvent, reservation_holder
from store.models import Product, Reservation
from tests.support.emulator import (
    SHIPPING_ADDRESS,
    Emulator,
    free_port,
    running_emulator,
    wait_until,
)
from tests.support.orders import pending_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]

PAYS = "4242424242424242"
DECLINED = "4000000000000002"


@dataclass
class Shop:
    url: str
    emulator: Emulator

    def seed(self, *, name: str, unit_amount: int, stock: int) -> Product:
        """Create the product in (emulated) Stripe; its webhooks bring it into the shop."""
        stripe = self.emulator.client()
        product = stripe.v1.products.create(params={"name": name, "images": ["/static/x.svg"]})
        price = stripe.v1.prices.create(
            params={"product": product.id, "unit_amount": unit_amount, "currency": "usd"}
        )
        stripe.v1.products.update(product.id, params={"default_price": price.id})
        local = wait_until(
            lambda: Product.objects.visible().filter(stripe_id=product.id).first(),
            timeout=15,
            message="the product's webhooks never reached the shop",
        )
        Product.objects.filter(pk=local.pk).update(stock=stock)
        return Product.objects.get(pk=local.pk)


class Shopper:
    """A browser without JavaScript: cookies, CSRF token, forms."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.http = requests.Session()
        self.http.get(shop.url + "/", timeout=10).raise_for_status()

    def post(self, path: str, data: dict[str, Any] | None = None) -> requests.Response:
        token = self.http.cookies["csrftoken"]
        return self.http.post(
            self.shop.url + path,
            data={"csrfmiddlewaretoken": token, **(data or {})},
            allow_redirects=False,
            timeout=30,
        )

    def add(self, product: Product, quantity: int) -> None:
        response = self.post("/cart/add/", {"product": product.pk, "quantity": quantity})
        assert response.status_code == HTTPStatus.FOUND, response.text

    def checkout(self) -> str:
        """POST /checkout/ and return the hosted Checkout page's address."""
        response = self.post("/checkout/")
        assert response.status_code == HTTPStatus.SEE_OTHER, response.text
        return response.headers["Location"]

    def pay_on_hosted_page(self, page_url: str, card: str, **fields: str) -> requests.Response:
        page = self.http.get(page_url, timeout=10)
        assert page.status_code == HTTPStatus.OK
        action = re.search(r"<form method='post' action='([^']+)'", page.text)
        assert action, page.text
        return self.http.post(
            self.shop.emulator.api_base + action.group(1),
            data={
                "email": "buyer@example.com",
                "card": card,
                "expiry": "12/34",
                "cvc": "123",
                **SHIPPING_ADDRESS,
                **fields,
            },
            timeout=30,
        )  # follows the 303 to our success page


def session_id_of(page_url: str) -> str:
    return page_url.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
def shop_factory(settings, live_server) -> Iterator[Any]:
    def configure(emulator: Emulator) -> Shop:
        settings.STRIPE_API_BASE = emulator.api_base
        settings.STRIPE_SECRET_KEY = emulator.api_key
        settings.SITE_URL = live_server.url
        return Shop(url=live_server.url, emulator=emulator)

    yield configure


@pytest.fixture(params=[False, True], ids=["in-order", "chaos"])
def shop(request, settings, live_server, shop_factory) -> Iterator[Shop]:
    with running_emulator(
        forward_to=f"{live_server.url}/stripe/webhook/",
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        chaos=request.param,
    ) as emulator:
        yield shop_factory(emulator)


def stock(product: Product) -> int:
    return Product.objects.get(pk=product.pk).stock


def available(product: Product) -> int:
    return Product.objects.with_reserved().get(pk=product.pk).available()


def test_purchase_paid_by_webhook(shop):
    teapot = shop.seed(name="Teapot", unit_amount=4800, stock=5)
    shopper = Shopper(shop)
    shopper.add(teapot, 2)
    page_url = shopper.checkout()
    session_id = session_id_of(page_url)
    held = available(teapot)

    paid = shop.emulator.pay(session_id, card=PAYS, email="buyer@example.com")
    shop.emulator.flush()
    order = wait_until(
        lambda: Order.objects.filter(status=Order.Status.PAID).first(),
        timeout=15,
        message="the checkout.session.completed webhook never paid the order",
    )

    assert paid["paid"] is True
    assert held == 3
    assert order.stripe_session_id == session_id
    # Two teapots and the first (preselected) shipping rate of settings.SHIPPING_RATES.
    assert (order.amount_total, order.currency, order.email) == (
        9600 + 500,
        "usd",
        "buyer@example.com",
    )
    assert (order.amount_subtotal, order.amount_shipping) == (9600, 500)
    assert order.shipping_city == "San Francisco"
    assert order.stripe_payment_intent_id.startswith("pi_")
    assert stock(teapot) == 3
    assert available(teapot) == 3
    assert not CartItem.objects.exists()
    wait_until(lambda: len(mail.outbox) == 1, message="no confirmation email")
    assert mail.outbox[0].to == ["buyer@example.com"]
    completed = StripeEvent.objects.filter(type="checkout.session.completed")
    assert {e.status for e in completed} == {StripeEvent.Status.PROCESSED}
    assert Order.objects.count() == 1
    # The success page, arriving after the webhook, shows the order without doing it again.
    success = shopper.http.get(paid["redirect"], timeout=30)
    assert success.status_code == HTTPStatus.OK
    assert "Thank you for your order" in success.text
    assert stock(teapot) == 3
    assert len(mail.outbox) == 1


def test_purchase_through_the_hosted_page(shop):
    kettle = shop.seed(name="Kettle", unit_amount=3500, stock=4)
    shopper = Shopper(shop)
    shopper.add(kettle, 1)

    success = shopper.pay_on_hosted_page(shopper.checkout(), PAYS)
    shop.emulator.flush()

    assert success.status_code == HTTPStatus.OK
    assert success.url.startswith(shop.url + "/checkout/success/?session_id=cs_")
    assert "Thank you for your order" in success.text
    assert "1 &times; Kettle" in success.text
    assert "$35.00" in success.text
    wait_until(lambda: len(mail.outbox) >= 1)
    assert Order.objects.get().status == Order.Status.PAID
    assert stock(kettle) == 3
    assert len(mail.outbox) == 1  # duplicates (chaos) and the success page changed nothing
    assert 'id="cart-count" class="rounded-full bg-white/20 px-2 text-xs">0<' in (
        shopper.http.get(shop.url + "/cart/", timeout=10).text
    )


def test_declined_card_keeps_the_reservation_until_cancel(shop):
    lamp = shop.seed(name="Lamp", unit_amount=2000, stock=3)
    shopper = Shopper(shop)
    shopper.add(lamp, 2)
    page_url = shopper.checkout()

    declined = shopper.pay_on_hosted_page(page_url, DECLINED)
    shop.emulator.flush()

    assert declined.status_code == HTTPStatus.PAYMENT_REQUIRED
    assert "declined" in declined.text.lower()
    order = Order.objects.get()
    assert order.status == Order.Status.PENDING
    assert available(lamp) == 1
    assert stock(lamp) == 3

    back = shopper.http.get(
        f"{shop.url}/checkout/cancel/?session_id={order.stripe_session_id}", timeout=30
    )
    shop.emulator.flush()

    assert back.url == shop.url + "/cart/"
    assert "Checkout cancelled" in back.text
    assert Order.objects.get().status == Order.Status.EXPIRED
    assert available(lamp) == 3
    assert CartItem.objects.get().quantity == 2
    _, session = shop.emulator.request("GET", f"/v1/checkout/sessions/{order.stripe_session_id}")
    assert session["status"] == "expired"


def test_stripe_expiry_releases_the_reservation(shop):
    lamp = shop.seed(name="Lamp", unit_amount=2000, stock=3)
    shopper = Shopper(shop)
    shopper.add(lamp, 3)
    shopper.checkout()
    held = available(lamp)

    shop.emulator.advance_clock(31 * 60)
    shop.emulator.flush()

    wait_until(
        lambda: Order.objects.get().status == Order.Status.EXPIRED,
        timeout=15,
        message="checkout.session.expired never released the order",
    )
    assert held == 0
    assert available(lamp) == 3
    assert CartItem.objects.get().quantity == 3


def test_oversold_order_is_refunded_in_stripe(shop):
    vase = shop.seed(name="Vase", unit_amount=6000, stock=2)
    shopper = Shopper(shop)
    shopper.add(vase, 2)
    session_id = session_id_of(shopper.checkout())
    Product.objects.filter(pk=vase.pk).update(stock=1)  # staff miscounted meanwhile

    shop.emulator.pay(session_id, card=PAYS)
    shop.emulator.flush()

    order = wait_until(
        lambda: Order.objects.filter(status=Order.Status.REFUNDED).first(), timeout=15
    )
    assert "Vase: 2 paid for, only 1 in stock" in order.problem
    assert stock(vase) == 1
    refunds = shop.emulator.client().v1.refunds.list(
        params={"payment_intent": order.stripe_payment_intent_id}
    )
    assert [(r.id, r.amount, r.status) for r in refunds.data] == [
        (order.stripe_refund_id, 12000 + 500, "succeeded")  # the goods and their shipping
    ]
    wait_until(lambda: len(mail.outbox) == 1)
    assert "refunded" in mail.outbox[0].subject
    assert CartItem.objects.get().quantity == 2  # nothing was bought: the cart stays


def test_webhook_delayed_success_page_fulfils(settings, live_server, shop_factory, webhook):
    dead = f"http://127.0.0.1:{free_port()}/stripe/webhook/"
    with running_emulator(
        forward_to=dead, webhook_secret=settings.STRIPE_WEBHOOK_SECRET, max_attempts=1
    ) as emulator:
        shop = shop_factory(emulator)
        stripe = emulator.client()
        product = stripe.v1.products.create(params={"name": "Spoons"})
        price = stripe.v1.prices.create(
            params={"product": product.id, "unit_amount": 1200, "currency": "usd"}
        )
        # No webhook arrives, for the catalog either: bring it in with a sync from the API.
        call_command("sync_stripe", verbosity=0)
        spoons = Product.objects.get(stripe_id=product.id)
        assert spoons.price.stripe_id == price.id
        Product.objects.filter(pk=spoons.pk).update(stock=6)
        shopper = Shopper(shop)
        shopper.add(spoons, 4)

        success = shopper.pay_on_hosted_page(shopper.checkout(), PAYS)

        assert success.status_code == HTTPStatus.OK
        assert "Thank you for your order" in success.text
        assert not StripeEvent.objects.filter(type="checkout.session.completed").exists()
        order = Order.objects.get()
        assert order.status == Order.Status.PAID
        assert stock(spoons) == 2
        assert not CartItem.objects.exists()
        assert len(mail.outbox) == 1

        # The webhook, when it finally comes, changes nothing.
        events = (
            emulator.client().v1.events.list(params={"type": "checkout.session.completed"}).data
        )
        assert len(events) == 1
        response = webhook.post(events[0].to_dict())
        assert response.status_code == HTTPStatus.OK
        assert stock(spoons) == 2
        assert len(mail.outbox) == 1


def _bank_transfer_checkout(shop: Shop, *, name: str) -> tuple[Product, str, Shopper]:
    """A shopper checks out 2 of 3 and pays by bank transfer: Checkout completes unpaid. The
    order leaves the cart at once and keeps its stock held; the success page says the
    payment is awaited."""
    product = shop.seed(name=name, unit_amount=2500, stock=3)
    shopper = Shopper(shop)
    shopper.add(product, 2)
    page_url = shopper.checkout()
    session_id = session_id_of(page_url)

    success = shopper.pay_on_hosted_page(page_url, card="", method="bank_transfer")
    shop.emulator.flush()
    wait_until(
        lambda: StripeEvent.objects.filter(
            type="checkout.session.completed", status=StripeEvent.Status.PROCESSED
        ).exists(),
        timeout=15,
        message="checkout.session.completed never arrived",
    )

    assert success.status_code == HTTPStatus.OK
    assert success.url.startswith(f"{shop.url}/checkout/success/")
    assert "waiting for your payment" in success.text
    order = Order.objects.get()
    assert order.status == Order.Status.PROCESSING  # not fulfilled while unpaid
    assert not CartItem.objects.exists()  # it left the cart
    assert available(product) == 1
    assert stock(product) == 3
    assert not mail.outbox
    return product, session_id, shopper


def _every_event_is_handled_or_knowingly_ignored() -> None:
    from payments.webhooks import HANDLERS, IGNORED

    assert not set(HANDLERS) & IGNORED
    types = set(StripeEvent.objects.values_list("type", flat=True))
    assert types <= set(HANDLERS) | IGNORED, types - set(HANDLERS) - IGNORED
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).exists()


def test_delayed_payment_is_fulfilled_only_when_it_settles(shop):
    pot, session_id, shopper = _bank_transfer_checkout(shop, name="Pot")
    # The same browser shops and checks out again at once, while the transfer is on its way.
    shopper.add(pot, 1)
    second_page = shopper.checkout()

    shop.emulator.settle(session_id, succeeded=True)
    shop.emulator.flush()

    order = wait_until(
        lambda: Order.objects.filter(status=Order.Status.PAID).first(),
        timeout=15,
        message="checkout.session.async_payment_succeeded never paid the order",
    )
    second = Order.objects.exclude(pk=order.pk).get()
    assert order.stripe_session_id == session_id
    assert order.stripe_payment_intent_id.startswith("pi_")
    assert (second.status, second.stripe_session_id) == (
        Order.Status.PENDING,
        session_id_of(second_page),
    )
    assert stock(pot) == 1
    assert available(pot) == 0  # the second checkout holds the last one
    assert CartItem.objects.get().quantity == 1  # the paid order took nothing of the new cart
    wait_until(lambda: len(mail.outbox) == 1, message="no confirmation email")
    _every_event_is_handled_or_knowingly_ignored()
    assert StripeEvent.objects.filter(
        type="checkout.session.async_payment_succeeded", status=StripeEvent.Status.PROCESSED
    ).exists()


def test_delayed_payment_that_fails_releases_the_reservation(shop):
    pan, session_id, _ = _bank_transfer_checkout(shop, name="Pan")

    shop.emulator.settle(session_id, succeeded=False)
    shop.emulator.flush()

    order = wait_until(
        lambda: Order.objects.filter(status=Order.Status.FAILED).first(),
        timeout=15,
        message="checkout.session.async_payment_failed never released the order",
    )
    assert "bank transfer" in order.problem
    assert stock(pan) == 3
    assert available(pan) == 3
    assert not CartItem.objects.exists()  # it left the cart at checkout; nothing comes back
    wait_until(lambda: len(mail.outbox) == 1, message="the shopper was not told")
    assert mail.outbox[0].to == ["buyer@example.com"]
    assert "did not arrive" in mail.outbox[0].subject
    _every_event_is_handled_or_knowingly_ignored()
    ignored = StripeEvent.objects.filter(type="payment_intent.payment_failed").get()
    assert ignored.status == StripeEvent.Status.IGNORED


def _a_day_passes(order: Order, hours: float = 25) -> None:
    """Every moment of the order moves `hours` into the past, and the sweep's look is due."""
    ago = timedelta(hours=hours)
    Order.objects.filter(pk=order.pk).update(
        created_at=F("created_at") - ago, stripe_check_at=timezone.now()
    )
    Reservation.objects.filter(holder=reservation_holder(order.pk)).update(
        expires_at=F("expires_at") - ago
    )


def test_a_transfer_past_its_hold_gives_the_stock_back_and_is_filled_when_it_comes(settings, shop):
    """Stripe refuses to cancel a Checkout Session's PaymentIntent: the shop ends its own
    hold, and the order still takes the money when it comes."""
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle, session_id, _ = _bank_transfer_checkout(shop, name="Kettle")
    order = Order.objects.get()
    _a_day_passes(order)

    settle.reservations_release_expired()

    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING
    assert available(kettle) == 3
    wait_until(lambda: len(mail.outbox) == 1, message="the shopper was not told")
    assert "no longer held" in mail.outbox[0].subject
    intent = shop.emulator.client().v1.payment_intents.retrieve(order.stripe_payment_intent_id)
    assert intent.status != "canceled"

    shop.emulator.settle(session_id, succeeded=True)
    shop.emulator.flush()

    wait_until(
        lambda: Order.objects.get(pk=order.pk).status == Order.Status.PAID,
        timeout=15,
        message="the transfer that came late was not filled",
    )
    assert (stock(kettle), available(kettle)) == (1, 1)
    _every_event_is_handled_or_knowingly_ignored()


def test_a_transfer_that_comes_after_its_stock_was_sold_is_refunded(settings, shop):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle, session_id, _ = _bank_transfer_checkout(shop, name="Kettle")
    order = Order.objects.get()
    _a_day_passes(order)
    settle.reservations_release_expired()
    other = Shopper(shop)  # the units, back on sale, are bought by someone else
    other.add(kettle, 3)
    shop.emulator.pay(session_id_of(other.checkout()), card=PAYS)
    shop.emulator.flush()
    wait_until(lambda: stock(kettle) == 0, timeout=15, message="the other sale never landed")

    shop.emulator.settle(session_id, succeeded=True)
    shop.emulator.flush()

    wait_until(
        lambda: Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED,
        timeout=15,
        message="the transfer that came too late was not refunded",
    )
    order.refresh_from_db()
    refunds = shop.emulator.client().v1.refunds.list(
        {"payment_intent": order.stripe_payment_intent_id}
    )
    assert [r.amount for r in refunds.data] == [order.amount_total]  # the transfer, whole
    assert stock(kettle) == 0


def test_events_that_never_arrive_are_caught_up_by_reconcile(settings, live_server, shop_factory):
    """`--drop 1`: not one webhook arrives; the Events API still has them all."""
    settings.RECONCILE_GRACE_SECONDS = 0  # nothing is in flight: every delivery is dropped
    with running_emulator(
        forward_to=f"{live_server.url}/stripe/webhook/",
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        drop=1.0,
    ) as emulator:
        shop = shop_factory(emulator)
        stripe = emulator.client()
        product = stripe.v1.products.create(params={"name": "Whisk"})
        price = stripe.v1.prices.create(
            params={"product": product.id, "unit_amount": 900, "currency": "usd"}
        )
        stripe.v1.products.update(product.id, params={"default_price": price.id})
        call_command("reconcile_stripe", days=1, verbosity=0)
        whisk = Product.objects.get(stripe_id=product.id)
        Product.objects.filter(pk=whisk.pk).update(stock=4)
        shopper = Shopper(shop)
        shopper.add(whisk, 1)

        emulator.pay(session_id_of(shopper.checkout()))
        emulator.flush()
        unpaid = Order.objects.get().status
        call_command("reconcile_stripe", verbosity=0)

        assert unpaid == Order.Status.PENDING
        assert Order.objects.get().status == Order.Status.PAID
        assert stock(whisk) == 3
        assert {d["status"] for d in emulator.deliveries()} == {"dropped"}
        assert not any(d["attempts"] for d in emulator.deliveries())


def test_a_reset_database_never_meets_the_old_orders_session(settings, live_server, shop_factory):
    """The database is reset (or restored) while Stripe keeps its idempotency keys for 24 h:
    the next order gets an old order's id again. Its Checkout Session must be its own, with
    its own cart, not Stripe's answer to the old order's key (nor a refusal of it)."""
    with running_emulator(
        forward_to=f"{live_server.url}/stripe/webhook/",
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
    ) as emulator:
        shop = shop_factory(emulator)
        kettle = shop.seed(name="Kettle", unit_amount=3000, stock=5)
        shopper = Shopper(shop)
        shopper.add(kettle, 1)
        old_session = session_id_of(shopper.checkout())
        old = Order.objects.get()
        Order.objects.all().delete()  # the reset: Stripe still has the old session and key
        reused = pending_order((kettle, 3), pk=old.pk, stripe_session_id=None, minutes=31)

        session = sessions.order_session(order=reused)

        items = stripe_api.checkout_session_retrieve(session["id"])["line_items"]["data"]
        assert session["id"] != old_session
        assert session["client_reference_id"] == str(old.pk)
        assert [(item["price"]["id"], item["quantity"]) for item in items] == [
            (kettle.price.stripe_id, 3)
        ]
        assert session["amount_total"] == 3 * 3000 + 500  # three kettles and the shipping
        assert Order.objects.get().stripe_session_id == session["id"]
