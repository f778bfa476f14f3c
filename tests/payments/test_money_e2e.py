"""Issues 17 and 20 over real HTTP: the shop on live_server, the Stripe emulator (as Stripe
behaves: refunds that wait and fail, disputes, errors kept for their idempotency key) and,
where an answer must be lost, a fault-injecting proxy between the two."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from payments import catalog, checkout, fulfilment, money_look, refunds, webhooks
from payments.models import Dispute, Order, Refund, StripeEvent
from store.models import Product
from tests.payments.test_purchase_e2e import Shop, shop_factory  # noqa: F401
from tests.support.emulator import running_emulator, wait_until
from tests.support.fault_proxy import Fault, FaultProxy, running_fault_proxy
from tests.support.tasks import DEFERRED, run_deferred

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]

PAYS = "4242424242424242"
REFUND_FAILS_LATER = "4000000000005126"
REFUND_PENDING = "4000000000007726"
DISPUTED = "4000000000000259"
REFUNDS = r"^/v1/refunds$"


@pytest.fixture
def shop(settings, live_server, shop_factory) -> Iterator[Shop]:  # noqa: F811
    settings.STAFF_EMAILS = ["owner@example.com"]
    with running_emulator(
        forward_to=f"{live_server.url}/stripe/webhook/",
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
    ) as emulator:
        yield shop_factory(emulator)


@pytest.fixture
def silent(settings, live_server, shop_factory) -> Iterator[Shop]:  # noqa: F811
    """The emulator delivering no webhooks: what the shop learns, it asks for."""
    with running_emulator(forward_to="") as emulator:
        yield shop_factory(emulator)


@pytest.fixture
def proxy(settings) -> Any:
    """`with proxy(emulator) as faults:` the shop talks to the emulator through the fault
    proxy."""

    @contextmanager
    def start(shop: Shop) -> Iterator[FaultProxy]:
        with running_fault_proxy(shop.emulator.api_base) as faults:
            settings.STRIPE_API_BASE = faults.url
            yield faults

    return start


def paid(shop: Shop, *, card: str = PAYS, stock: int = 5, price: int = 4000) -> Order:
    """A goods order paid with `card` and filled (by its webhook, or asked for here)."""
    stripe = shop.emulator.client()
    product = stripe.v1.products.create(params={"name": f"Teapot {card[-4:]}"})
    made = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": price, "currency": "usd"}
    )
    stripe.v1.products.update(product.id, params={"default_price": made.id})
    catalog.product_apply(obj=stripe.v1.products.retrieve(product.id).to_dict(), event_created=0)
    catalog.price_apply(obj=made.to_dict(), event_created=0)
    local = Product.objects.get(stripe_id=product.id)
    Product.objects.filter(pk=local.pk).update(stock=stock)
    started = checkout.checkout_start(
        user=None,
        lines=[checkout.LineRequest(product_id=local.pk, quantity=1)],
        email="kim@example.com",
    )
    session_id = started.order.stripe_session_id or ""
    assert shop.emulator.pay(session_id, card=card)["paid"]
    fulfilment.fulfil_checkout_session(session_id=session_id)
    shop.emulator.flush()
    order = Order.objects.get(pk=started.order.pk)
    assert order.status == Order.Status.PAID
    return order


def at_stripe(shop: Shop, order: Order) -> list[Any]:
    intent = order.stripe_payment_intent_id
    return shop.emulator.client().v1.refunds.list(params={"payment_intent": intent}).data


def settled(predicate: Any, message: str) -> Any:
    return wait_until(predicate, timeout=30, message=message)


def test_a_refund_whose_answer_is_lost_is_made_once(silent, proxy):
    """Issue 20.3: $10, the answer lost on the way back (and the SDK's two retries too):
    the refund stays requested, counted; the same form again finds it: one $10 refund."""
    order = paid(silent)

    with proxy(silent) as faults:
        faults.add(Fault.LOSE_ANSWER, path=REFUNDS, times=3)
        lost = refunds.order_refund(order_id=order.pk, request_token="lost", amount=1000)
        order.refresh_from_db()
        counted = order.refundable
        again = refunds.order_refund(order_id=order.pk, request_token="lost", amount=1000)
        posted = faults.seen(path=REFUNDS, method="POST")

    assert posted == 3  # the SDK's three tries; then found by listing, not asked again
    assert lost.status == Refund.Status.REQUESTED
    assert not order.events.filter(kind="refund_failed").exists()
    assert counted == order.amount_total - 1000
    assert again.status == Refund.Status.SUCCEEDED
    assert [(r.amount, r.status) for r in at_stripe(silent, order)] == [(1000, "succeeded")]
    assert Order.objects.get(pk=order.pk).amount_refunded == 1000


def test_a_500_stripe_keeps_for_the_key_is_not_replayed_for_ever(silent):
    """The emulator, as Stripe, makes the refund, answers 500, and replays that 500 for the
    key: the next look asks Stripe first, finds the refund, and makes no other."""
    order = paid(silent)
    silent.emulator.fail_next("/v1/refunds", when="after")

    first = refunds.order_refund(order_id=order.pk, request_token="500", amount=1500)
    looked = money_look.money_look(now=timezone.now() + timedelta(minutes=1))

    assert first.status == Refund.Status.REQUESTED and first.attempt == 2
    assert looked.settled == 1
    assert [(r.amount, r.status) for r in at_stripe(silent, order)] == [(1500, "succeeded")]
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED


def test_an_unfilled_orders_refund_outlives_its_task(shop, proxy, settings):
    """Issue 20.2: Stripe answers 503 to every refund until the task's retries run out; the
    periodic look then refunds the order, once."""
    settings.TASK_MAX_ATTEMPTS = 2
    product = shop.seed(name="Last lamp", unit_amount=2500, stock=1)
    started = checkout.checkout_start(
        user=None,
        lines=[checkout.LineRequest(product_id=product.pk, quantity=1)],
        email="kim@example.com",
    )
    Product.objects.filter(pk=product.pk).update(stock=0)  # sold elsewhere meanwhile
    with proxy(shop) as faults:
        faults.add(Fault.UNAVAILABLE, path=REFUNDS, times=None)
        shop.emulator.pay(started.order.stripe_session_id)
        settled(lambda: list(DEFERRED), "the refund task's first try never failed")
        run_deferred()  # its second and last try: it gives up
        gave_up = Order.objects.get(pk=started.order.pk).status
        faults.clear()

        money_look.money_look()
        money_look.money_look(now=timezone.now() + timedelta(hours=1))
        posted = faults.seen(path=REFUNDS, method="POST")

    assert gave_up == Order.Status.REFUND_PENDING
    order = Order.objects.get(pk=started.order.pk)
    assert order.status == Order.Status.REFUNDED
    assert [(r.amount, r.status) for r in at_stripe(shop, order)] == [
        (order.amount_total, "succeeded")
    ]
    # The task's two tries of three requests each (the SDK retries a 503), then the look's one.
    assert posted == 3 * 2 + 1


def test_a_refund_that_fails_later_puts_the_order_back_and_tells_staff(shop):
    order = paid(shop, card=REFUND_FAILS_LATER)
    refund = refunds.order_refund(order_id=order.pk, request_token="5126", everything=True)
    settled(lambda: Order.objects.get(pk=order.pk).status == "refunded", "never refunded")

    shop.emulator.advance_clock(61)  # the 5126 card's refund fails a minute later
    shop.emulator.flush()

    order = settled(
        lambda: Order.objects.filter(pk=order.pk, status=Order.Status.PAID).first(),
        "the failed refund never put the order back",
    )
    assert refund.status == Refund.Status.SUCCEEDED
    assert (order.amount_refunded, order.refundable) == (0, order.amount_total)
    assert Refund.objects.get().status == Refund.Status.FAILED
    assert "failed at Stripe" in order.attention
    assert any(m.subject.startswith("[Amazin] Refund failed") for m in mail.outbox)
    assert "refund_failed" in order.events.values_list("kind", flat=True)


def test_a_pending_refund_is_money_returned_only_once_it_succeeds(shop):
    order = paid(shop, card=REFUND_PENDING)

    refund = refunds.order_refund(order_id=order.pk, request_token="7726", amount=1000)
    shop.emulator.flush()
    waiting = Order.objects.get(pk=order.pk)
    shop.emulator.advance_clock(61)
    shop.emulator.flush()

    assert refund.status == Refund.Status.PENDING
    assert (waiting.status, waiting.amount_refunded, waiting.amount_refunding) == ("paid", 0, 1000)
    settled(
        lambda: Order.objects.get(pk=order.pk).status == Order.Status.PARTIALLY_REFUNDED,
        "the refund never succeeded",
    )
    settled(
        lambda: (
            f"Your Amazin order #{order.pk}: refund of part of your payment"
            in [m.subject for m in mail.outbox if m.to == [order.email]]
        ),
        "the shopper was never told",
    )


def test_a_dispute_by_test_card_is_on_the_order_and_a_lost_one_is_money_gone(shop, admin_client):
    order = paid(shop, card=DISPUTED)
    dispute = settled(
        lambda: Dispute.objects.filter(order=order).first(), "the dispute never reached it"
    )
    page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()

    shop.emulator.decide_dispute(dispute.stripe_dispute_id, won=False)
    shop.emulator.flush()

    assert (dispute.status, dispute.reason) == ("needs_response", "fraudulent")
    assert dispute.amount == order.amount_total
    assert "Disputes" in page and dispute.stripe_dispute_id in page
    order = settled(
        lambda: Order.objects.filter(pk=order.pk, amount_disputed=dispute.amount).first(),
        "the lost dispute never counted",
    )
    assert order.refundable == 0
    staff = [m.subject for m in mail.outbox if m.to == ["owner@example.com"]]
    assert staff == [
        f"[Amazin] Dispute of $45.00 opened on order #{order.pk}",
        f"[Amazin] Dispute of $45.00 lost on order #{order.pk}",
    ]


def test_a_refund_made_before_the_shop_saw_the_payment_is_not_lost(settings):
    """Issue 20.1 as found: the payment's webhooks lost, the charge refunded in Stripe's
    dashboard and its events delivered (no order has the payment yet), then reconciliation
    fills the order: it reads refunded, no unit taken, and the refund's event is kept and
    applied, not forgotten."""
    settings.RECONCILE_GRACE_SECONDS = 0
    with running_emulator(forward_to="") as emulator:
        settings.STRIPE_API_BASE = emulator.api_base
        settings.STRIPE_SECRET_KEY = emulator.api_key
        stripe = emulator.client()
        product = stripe.v1.products.create(params={"name": "Vase"})
        price = stripe.v1.prices.create(
            params={"product": product.id, "unit_amount": 3000, "currency": "usd"}
        )
        stripe.v1.products.update(product.id, params={"default_price": price.id})
        call_command("reconcile_stripe")
        vase = Product.objects.get(stripe_id=product.id)
        Product.objects.filter(pk=vase.pk).update(stock=2)
        started = checkout.checkout_start(
            user=None,
            lines=[checkout.LineRequest(product_id=vase.pk, quantity=1)],
            email="kim@example.com",
        )
        emulator.pay(started.order.stripe_session_id)
        session = stripe.v1.checkout.sessions.retrieve(started.order.stripe_session_id)
        stripe.v1.refunds.create(params={"payment_intent": session.payment_intent})
        for delivered in stripe.v1.events.list(params={"type": "charge.refunded"}).data:
            webhooks.stripe_event_process(
                record=webhooks.stripe_event_record(event=json.loads(str(delivered)))
            )
        kept = StripeEvent.objects.get(type="charge.refunded")

        call_command("reconcile_stripe")
        money_look.money_look()

    assert kept.status == StripeEvent.Status.WAITING
    order = Order.objects.get(pk=started.order.pk)
    assert order.status == Order.Status.REFUNDED
    assert order.amount_refunded == order.amount_total == 3000 + 500  # the vase, shipping
    assert Product.objects.get(pk=vase.pk).stock == 2
    kept.refresh_from_db()
    assert kept.status == StripeEvent.Status.PROCESSED
