"""Fulfilment and its callers, with Stripe patched at payments/stripe_api.py."""

from http import HTTPStatus
from io import StringIO
from typing import Any
from unittest import mock

import pytest
import stripe
from django.core import mail
from django.core.management import call_command

from accounts.models import Entitlement
from cart.models import Cart, CartItem
from payments import fulfilment, settle
from payments.models import Order, StripeEvent
from store.models import Product
from tests.factories import CartFactory, CartItemFactory, ProductFactory, UserFactory
from tests.support.orders import browser_cart, paid_session, pending_order
from tests.support.stripe_events import event
from tests.support.tasks import run_deferred

pytestmark = pytest.mark.django_db


def shopper(**kwargs):
    user = UserFactory(**kwargs)
    user.save()  # UserFactory's password is set but not saved; force_login needs it saved
    return user


def stock(product: Product) -> int:
    return Product.objects.get(pk=product.pk).stock


def test_paid_session_is_fulfilled_once(stripe_sessions, django_capture_on_commit_callbacks):
    teapot, cups, other = ProductFactory(stock=5), ProductFactory(stock=9), ProductFactory()
    cart = CartFactory()
    for product in (teapot, cups, other):
        CartItemFactory(cart=cart, product=product)
    order = pending_order((teapot, 2), (cups, 3), cart=cart)
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with (
        mock.patch("store.live.publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        first = fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
        second = fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    order.refresh_from_db()
    assert first == second == order
    assert order.status == Order.Status.PAID
    assert order.amount_total == 2 * 1500 + 3 * 1500
    assert order.email == "payer@example.com"
    assert order.stripe_payment_intent_id == f"pi_test_{order.pk}"
    assert order.paid_at is not None
    assert (stock(teapot), stock(cups)) == (3, 6)
    assert list(cart.items.values_list("product_id", flat=True)) == [other.pk]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["payer@example.com"]
    assert f"order #{order.pk}" in message.subject
    assert "Total charged: $75.00" in message.body
    assert message.alternatives[0][1] == "text/html"
    assert "$75.00" in message.alternatives[0][0]
    publish.assert_called_once_with(sorted([teapot.pk, cups.pk]))


@pytest.mark.parametrize("payment_status", ["unpaid"])
def test_unpaid_session_changes_nothing(stripe_sessions, payment_status):
    product = ProductFactory(stock=5)
    order = pending_order((product, 1))
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status=payment_status)

    result = fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    order.refresh_from_db()
    assert result is None
    assert order.status == Order.Status.PENDING
    assert stock(product) == 5
    assert mail.outbox == []


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"client_reference_id": "999999", "metadata": {}}, id="unknown-order"),
        pytest.param({"metadata": {"order_id": "999999"}}, id="metadata-disagrees"),
        pytest.param({"client_reference_id": None, "metadata": {}}, id="no-reference"),
        pytest.param({"client_reference_id": "abc", "metadata": {}}, id="garbage-reference"),
    ],
)
def test_session_not_ours_changes_nothing(stripe_sessions, tamper):
    product = ProductFactory(stock=5)
    order = pending_order((product, 1))
    stripe_sessions[order.stripe_session_id] = paid_session(order) | tamper

    result = fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    assert result is None
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert stock(product) == 5


def test_a_session_pointing_at_another_orders_reference_is_not_fulfilled(stripe_sessions):
    product = ProductFactory(stock=5)
    victim = pending_order((product, 1))
    forged = paid_session(victim) | {"id": "cs_test_other"}
    stripe_sessions["cs_test_other"] = forged

    result = fulfilment.fulfil_checkout_session(session_id="cs_test_other")

    assert result is None
    assert Order.objects.get(pk=victim.pk).status == Order.Status.PENDING


def test_expired_order_is_still_fulfilled_when_stock_allows(stripe_sessions):
    product = ProductFactory(stock=2)
    order = pending_order((product, 2))
    Order.objects.filter(pk=order.pk).update(status=Order.Status.EXPIRED)
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert stock(product) == 0


def test_a_payment_after_its_hold_ended_takes_the_unit_and_the_later_holder_is_refunded(
    stripe_sessions, refunds, django_capture_on_commit_callbacks
):
    """The payer whose hold ran out is filled (their money is in hand); the shopper who
    reserved the unit since is refunded automatically when their payment comes, and told."""
    lamp = ProductFactory(name="Lamp", stock=1)
    late = pending_order((lamp, 1), minutes=-1)  # its hold ran out, its session was paid
    holder = pending_order((lamp, 1), email="holder@example.com")  # reserved it since
    for order in (late, holder):
        stripe_sessions[order.stripe_session_id] = paid_session(
            order, customer_details={"email": f"{order.pk}@example.com"}
        )

    with django_capture_on_commit_callbacks(execute=True):
        fulfilment.fulfil_checkout_session(session_id=late.stripe_session_id)
    taken = stock(lamp)
    with django_capture_on_commit_callbacks(execute=True):
        fulfilment.fulfil_checkout_session(session_id=holder.stripe_session_id)

    late.refresh_from_db()
    holder.refresh_from_db()
    assert late.status == Order.Status.PAID
    assert taken == 0
    assert holder.status == Order.Status.REFUNDED
    assert "Lamp: 1 paid for, only 0 in stock" in holder.problem
    refunds.assert_called_once_with(
        payment_intent=f"pi_test_{holder.pk}",
        order_id=holder.pk,
        idempotency_key=holder.idempotency_key("refund"),
        amount=holder.amount_total,
        reason="",
        metadata={"amazin_refund": str(holder.refunds.get().pk)},
    )
    assert Product.objects.with_reserved().get(pk=lamp.pk).available() == 0
    told = {message.to[0]: message.subject for message in mail.outbox}
    assert "could not be filled and was refunded" in told[f"{holder.pk}@example.com"]
    assert told[f"{late.pk}@example.com"] == f"Your Amazin order #{late.pk}"


def test_oversold_order_is_refunded_with_nothing_half_applied(
    stripe_sessions, refunds, django_capture_on_commit_callbacks
):
    plenty, short = ProductFactory(stock=10), ProductFactory(name="Kettle", stock=3)
    order = pending_order((plenty, 2), (short, 3))
    Product.objects.filter(pk=short.pk).update(stock=1)  # staff lowered it meanwhile
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with django_capture_on_commit_callbacks(execute=True):
        result = fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
        again = fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    order.refresh_from_db()
    assert result == again == order
    assert order.status == Order.Status.REFUNDED
    assert "Kettle: 3 paid for, only 1 in stock" in order.problem
    assert order.stripe_refund_id == "re_test_1"
    assert (stock(plenty), stock(short)) == (10, 1)
    refunds.assert_called_once_with(
        payment_intent=f"pi_test_{order.pk}",
        order_id=order.pk,
        idempotency_key=f"amazin-refund-order-{order.idempotency_token}",
        amount=order.amount_total,
        reason="",
        metadata={"amazin_refund": str(order.refunds.get().pk)},
    )
    assert len(mail.outbox) == 1
    assert "refunded" in mail.outbox[0].subject
    assert "$75.00" in mail.outbox[0].body


def test_a_failing_refund_is_retried_by_the_queue_never_in_the_webhook(
    stripe_sessions, webhook, django_capture_on_commit_callbacks
):
    product = ProductFactory(stock=1)
    order = pending_order((product, 1))
    Product.objects.filter(pk=product.pk).update(stock=0)
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    payload = event("checkout.session.completed", paid_session(order))

    with (
        mock.patch(
            "payments.stripe_api.refund_create", side_effect=stripe.APIConnectionError("down")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        answered = webhook.post(payload)
    waiting = Order.objects.get(pk=order.pk)
    made = {"id": "re_1", "status": "succeeded"}
    with (
        mock.patch("payments.stripe_api.refund_create", return_value=made) as refund,
        django_capture_on_commit_callbacks(execute=True),
    ):
        retried = run_deferred()

    assert answered.status_code == HTTPStatus.OK  # Stripe's trouble is the queue's, not Stripe's
    assert waiting.status == Order.Status.REFUND_PENDING
    assert "only 0 in stock" in waiting.problem
    assert retried == 1
    # No answer the first time: the same key again (Stripe answers it with the first
    # request's outcome), after asking Stripe what exists.
    refund.assert_called_once_with(
        payment_intent=f"pi_test_{order.pk}",
        order_id=order.pk,
        idempotency_key=f"amazin-refund-order-{order.idempotency_token}",
        amount=waiting.amount_total,
        reason="",
        metadata={"amazin_refund": str(order.refunds.get().pk)},
    )
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert order.stripe_refund_id == "re_1"
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED
    assert Product.objects.get(pk=product.pk).stock == 0
    assert len(mail.outbox) == 1


def test_completed_webhook_fulfils_from_stripe_not_from_the_event(stripe_sessions, webhook):
    product = ProductFactory(stock=4)
    order = pending_order((product, 1))
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")
    forged = paid_session(order)  # the event says paid; Stripe says otherwise

    response = webhook.post(event("checkout.session.completed", forged))

    assert response.status_code == HTTPStatus.OK
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert stock(product) == 4


@pytest.mark.parametrize(
    "event_type", ["checkout.session.completed", "checkout.session.async_payment_succeeded"]
)
def test_paid_webhooks_fulfil(stripe_sessions, webhook, event_type):
    product = ProductFactory(stock=4)
    order = pending_order((product, 3))
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    response = webhook.post(event(event_type, paid_session(order)))

    assert response.status_code == HTTPStatus.OK
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert stock(product) == 1


def test_expired_webhook_releases_the_reservation(webhook, stripe_sessions):
    product = ProductFactory(stock=4)
    order = pending_order((product, 3))
    stripe_sessions[order.stripe_session_id] = paid_session(
        order, payment_status="unpaid", status="expired"
    )

    response = webhook.post(event("checkout.session.expired", {"id": order.stripe_session_id}))

    assert response.status_code == HTTPStatus.OK
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED
    assert Product.objects.with_reserved().get(pk=product.pk).available() == 4


def test_an_expired_event_stripe_does_not_confirm_releases_nothing(webhook, stripe_sessions):
    """Only a trigger, as every event: the shopper is still on Checkout, the stock stays."""
    product = ProductFactory(stock=4)
    order = pending_order((product, 3))
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")

    response = webhook.post(event("checkout.session.expired", {"id": order.stripe_session_id}))

    assert response.status_code == HTTPStatus.OK
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert Product.objects.with_reserved().get(pk=product.pk).available() == 1


def test_an_expired_event_for_a_session_stripe_says_paid_fulfils_it(webhook, stripe_sessions):
    product = ProductFactory(stock=4)
    order = pending_order((product, 3))
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    webhook.post(event("checkout.session.expired", {"id": order.stripe_session_id}))

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert stock(product) == 1


def test_an_expired_event_waits_for_stripe_to_answer(webhook):
    """Stripe cannot be asked (settings_test points at a closed port): nothing is released,
    and the event fails, to be retried."""
    product = ProductFactory(stock=4)
    order = pending_order((product, 3))

    webhook.post(event("checkout.session.expired", {"id": order.stripe_session_id}))

    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert StripeEvent.objects.get().status == StripeEvent.Status.FAILED


def test_expired_webhook_leaves_a_paid_order_alone(webhook):
    order = pending_order((ProductFactory(), 1))
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)

    webhook.post(event("checkout.session.expired", {"id": order.stripe_session_id}))

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def stripe_charge(order: Order, amount_refunded: int, *refunds: dict) -> Any:
    """Patch Stripe so that the order's charge is as given: `charge_retrieve` returns the
    charge (without its refunds, as Stripe has since API 2022-11-15) and
    `refunds_of_payment` lists `refunds`, newest first."""
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": f"pi_test_{order.pk}",
        "amount": order.amount_total,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded >= order.amount_total,
    }
    patches = mock.patch.multiple(
        "payments.stripe_api",
        charge_retrieve=mock.DEFAULT,
        refunds_of_payment=mock.DEFAULT,
    )

    class Patch:
        def __enter__(self):
            found = patches.__enter__()
            found["charge_retrieve"].return_value = charge
            found["refunds_of_payment"].return_value = list(reversed(refunds))
            return found["charge_retrieve"]

        def __exit__(self, *exc):
            return patches.__exit__(*exc)

    return Patch()


def test_charge_refunded_marks_the_order_and_revokes_access(stripe_sessions, webhook):
    user = shopper()
    access = ProductFactory(stock=0, with_price__lookup_key="amazin_access_pass")
    order = pending_order((access, 1), user=user, kind=Order.Kind.ACCESS)
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    order.refresh_from_db()
    granted = Entitlement.objects.live().filter(user=user).count()
    refund = {"id": "re_1", "amount": order.amount_total, "status": "succeeded"}
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": f"pi_test_{order.pk}",
        "refunded": True,
    }

    with stripe_charge(order, order.amount_total, refund) as asked:
        response = webhook.post(event("charge.refunded", charge))

    assert granted == 1
    assert response.status_code == HTTPStatus.OK
    asked.assert_called_once_with("ch_1")
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert not Entitlement.objects.live().filter(user=user).exists()
    assert stock(access) == 0  # access orders take no stock
    assert list(order.refunds.values_list("stripe_refund_id", "amount")) == [
        ("re_1", order.amount_total)
    ]


def test_forged_full_refund_payload_changes_nothing(stripe_sessions, webhook):
    """Issue 10: the payload says refunded; Stripe says not. Stripe wins."""
    user = shopper()
    access = ProductFactory(stock=0, with_price__lookup_key="amazin_access_pass")
    order = pending_order((access, 1), user=user, kind=Order.Kind.ACCESS)
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    order.refresh_from_db()
    forged = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": f"pi_test_{order.pk}",
        "amount": order.amount_total,
        "amount_refunded": order.amount_total,
        "refunded": True,
        "refunds": {"data": [{"id": "re_forged", "amount": order.amount_total}]},
    }

    with stripe_charge(order, 0) as asked:
        response = webhook.post(event("charge.refunded", forged))

    assert response.status_code == HTTPStatus.OK
    asked.assert_called_once_with("ch_1")
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PAID, 0)
    assert Entitlement.objects.live().filter(user=user).exists()
    assert not order.refunds.exists()


def test_partial_refund_is_recorded_and_keeps_access(stripe_sessions, webhook):
    user = shopper()
    access = ProductFactory(stock=0, with_price__lookup_key="amazin_access_pass")
    order = pending_order((access, 1), user=user, kind=Order.Kind.ACCESS)
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    order.refresh_from_db()
    charge = {"id": "ch_1", "payment_intent": f"pi_test_{order.pk}", "refunded": False}
    refund = {"id": "re_part", "amount": 300, "status": "succeeded", "reason": None}

    with stripe_charge(order, 300, refund):
        webhook.post(event("charge.refunded", charge))
        webhook.post(event("charge.refunded", charge))  # a second event: recorded once

    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 300)
    assert list(order.refunds.values_list("stripe_refund_id", "amount")) == [("re_part", 300)]
    assert list(order.events.values_list("kind", "amount")) == [
        ("paid", order.amount_total),
        ("refunded", 300),
    ]
    assert Entitlement.objects.live().filter(user=user).exists()


def test_partial_refund_does_not_mark_the_order_refunded(stripe_sessions, webhook):
    order = pending_order((ProductFactory(), 1))
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    order.refresh_from_db()
    charge = {"id": "ch_1", "payment_intent": f"pi_test_{order.pk}", "refunded": False}

    part = {"id": "re_part", "amount": 1, "status": "succeeded"}
    with stripe_charge(order, 1, part):
        webhook.post(event("charge.refunded", charge))

    assert Order.objects.get(pk=order.pk).status == Order.Status.PARTIALLY_REFUNDED


# The success page


def test_success_page_fulfils_and_shows_the_order(
    client, stripe_sessions, django_capture_on_commit_callbacks
):
    product = ProductFactory(name="Teapot", stock=3)
    order = pending_order((product, 2), cart=browser_cart(client))
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Thank you for your order" in html
    assert "2 &times; Teapot" in html
    assert 'data-testid="order-total">$30.00<' in html
    assert "payer@example.com" in html
    assert stock(product) == 1
    assert len(mail.outbox) == 1


def test_success_page_of_a_refunded_order_says_so(client, stripe_sessions, refunds):
    product = ProductFactory(stock=1)
    order = pending_order((product, 1))
    Product.objects.filter(pk=product.pk).update(stock=0)
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.OK
    assert "Your payment is being refunded" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("", id="missing"),
        pytest.param("?session_id=", id="empty"),
        pytest.param("?session_id=cs_test_madeup", id="made-up"),
        pytest.param("?session_id=../../etc/passwd", id="malformed"),
        pytest.param("?session_id=" + "cs_" + "a" * 5000, id="huge"),
    ],
)
def test_success_page_with_a_bad_session_goes_to_the_shop(client, stripe_sessions, query):
    response = client.get(f"/checkout/success/{query}", follow=True)

    assert response.redirect_chain == [("/", HTTPStatus.FOUND)]
    assert any("could not find" in str(m) for m in response.context["messages"])


def test_success_page_of_an_unpaid_session_goes_to_the_shop(client, stripe_sessions):
    order = pending_order((ProductFactory(), 1))
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


def test_success_page_of_another_users_order_shows_no_details(client, stripe_sessions):
    owner, intruder = shopper(), shopper()
    order = pending_order(
        (ProductFactory(name="Secret Teapot"), 1), user=owner, email="owner@example.com"
    )
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    client.force_login(intruder)

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "Thank you for your order" in html
    assert "Secret Teapot" not in html
    assert "payer@example.com" not in html and "owner@example.com" not in html


def test_success_page_of_an_anonymous_order_shows_details_only_to_its_browser(
    client, stripe_sessions
):
    order = pending_order((ProductFactory(name="Quiet Kettle"), 1), cart=CartFactory())
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    html = response.content.decode()
    assert "Thank you for your order" in html
    assert "Quiet Kettle" not in html
    assert "payer@example.com" not in html


def test_success_page_when_stripe_is_down_goes_to_the_shop(client):
    # settings_test's STRIPE_API_BASE is a closed port: the real SDK path raises.
    order = pending_order((ProductFactory(), 1))

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"


# Cancel


def test_cancel_expires_the_session_releases_and_keeps_the_cart(client, stripe_sessions):
    product = ProductFactory(stock=3)
    client.post("/cart/add/", {"product": product.pk, "quantity": 2})
    order = pending_order((product, 2), cart=Cart.objects.get())
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")

    response = client.get(f"/checkout/cancel/?session_id={order.stripe_session_id}", follow=True)

    assert stripe_sessions[order.stripe_session_id]["status"] == "expired"
    assert response.redirect_chain == [("/cart/", HTTPStatus.FOUND)]
    assert any("cancelled" in str(m) for m in response.context["messages"])
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED
    assert Product.objects.with_reserved().get(pk=product.pk).available() == 3
    assert CartItem.objects.get().quantity == 2


def test_cancel_after_paying_keeps_the_order_paid_and_goes_to_the_success_page(
    client, stripe_sessions, django_capture_on_commit_callbacks
):
    product = ProductFactory(stock=3)
    order = pending_order((product, 2), cart=browser_cart(client))
    stripe_sessions[order.stripe_session_id] = paid_session(order)  # paid, then "cancel"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"/checkout/cancel/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/checkout/success/?session_id={order.stripe_session_id}"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert stock(product) == 1
    assert len(mail.outbox) == 1
    assert "refund" not in mail.outbox[0].subject


def test_cancel_while_stripe_cannot_answer_keeps_the_hold(client):
    # settings_test's STRIPE_API_BASE is a closed port: Stripe cannot say what happened.
    product = ProductFactory(stock=3)
    order = pending_order((product, 2), cart=browser_cart(client))

    response = client.get(f"/checkout/cancel/?session_id={order.stripe_session_id}", follow=True)

    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert Product.objects.with_reserved().get(pk=product.pk).available() == 1
    assert any("could not confirm" in str(m) for m in response.context["messages"])


def test_cancel_from_another_browser_changes_nothing(client, stripe_sessions):
    product = ProductFactory(stock=3)
    order = pending_order((product, 2), cart=CartFactory())
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")

    response = client.get(f"/checkout/cancel/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.FOUND
    assert stripe_sessions[order.stripe_session_id]["status"] == "open"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert Product.objects.with_reserved().get(pk=product.pk).available() == 1


@pytest.mark.parametrize("query", ["", "?session_id=cs_test_nothing", "?session_id=%00"])
def test_cancel_with_a_bad_session_just_goes_to_the_cart(client, query):
    response = client.get(f"/checkout/cancel/{query}")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/cart/"


# Expiry sweep


def test_sweep_releases_only_lapsed_reservations_once_stripe_expired_them(stripe_sessions):
    product = ProductFactory(stock=5)
    lapsed = pending_order((product, 2), minutes=-1)
    live = pending_order((product, 1), minutes=10)
    for order in (lapsed, live):
        stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")

    released = settle.reservations_release_expired()

    assert released == 1
    assert stripe_sessions[lapsed.stripe_session_id]["status"] == "expired"
    assert stripe_sessions[live.stripe_session_id]["status"] == "open"
    assert Order.objects.get(pk=lapsed.pk).status == Order.Status.EXPIRED
    assert Order.objects.get(pk=live.pk).status == Order.Status.PENDING
    assert settle.reservations_release_expired() == 0


def test_sweep_fulfils_a_paid_session_whose_webhook_never_came(stripe_sessions):
    product = ProductFactory(stock=5)
    order = pending_order((product, 2), minutes=-1)
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    released = settle.reservations_release_expired()

    assert released == 0
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert stock(product) == 3


def test_sweep_keeps_the_hold_while_stripe_cannot_answer():
    product = ProductFactory(stock=5)
    order = pending_order((product, 2), minutes=-1)

    released = settle.reservations_release_expired()

    assert released == 0
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


def test_sweep_releases_an_order_whose_session_stripe_refuses_to_make():
    product = ProductFactory(stock=5)
    order = pending_order((product, 2), minutes=-1, stripe_session_id=None)
    refused = stripe.InvalidRequestError("expires_at must be in the future", "expires_at")

    with mock.patch("payments.stripe_api.checkout_session_create", side_effect=refused):
        released = settle.reservations_release_expired()

    assert released == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED


def test_sweep_finds_a_session_whose_creation_answer_was_lost(stripe_sessions):
    product = ProductFactory(stock=5)
    order = pending_order((product, 2), minutes=-1, stripe_session_id=None)
    lost = paid_session(order) | {"id": "cs_test_lost_answer"}  # made, then paid

    with mock.patch("payments.stripe_api.checkout_session_create", return_value=lost):
        stripe_sessions["cs_test_lost_answer"] = lost
        released = settle.reservations_release_expired()

    assert released == 0
    order.refresh_from_db()
    assert (order.status, order.stripe_session_id) == (Order.Status.PAID, "cs_test_lost_answer")
    assert stock(product) == 3


def test_one_order_stripe_cannot_settle_does_not_stall_the_sweep(stripe_sessions):
    product = ProductFactory(stock=5)
    broken = pending_order((product, 1), minutes=-2)
    fine = pending_order((product, 1), minutes=-1)
    stripe_sessions[fine.stripe_session_id] = paid_session(fine, payment_status="unpaid")
    stripe_sessions[broken.stripe_session_id] = paid_session(broken)  # complete and paid

    hiccup = [RuntimeError("database hiccup")]
    with mock.patch("payments.fulfilment.stock_take", side_effect=hiccup):
        released = settle.reservations_release_expired()

    assert released == 1
    assert Order.objects.get(pk=fine.pk).status == Order.Status.EXPIRED
    assert Order.objects.get(pk=broken.pk).status == Order.Status.PENDING


def test_release_command_reports_what_it_released(stripe_sessions):
    order = pending_order((ProductFactory(), 1), minutes=-5)
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")
    out = StringIO()

    call_command("release_expired_reservations", stdout=out)

    assert out.getvalue().strip() == "Released 1 expired reservations."
    assert Order.objects.get().status == Order.Status.EXPIRED


# Orders


def test_orders_list_newest_first_only_mine(client, stripe_sessions):
    me, other = shopper(), shopper()
    first = pending_order((ProductFactory(name="First thing"), 1), user=me)
    second = pending_order((ProductFactory(name="Second thing"), 1), user=me)
    pending_order((ProductFactory(name="Not mine"), 1), user=other)
    client.force_login(me)

    response = client.get("/orders/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert html.index("Second thing") < html.index("First thing")
    assert "Not mine" not in html
    assert [o.pk for o in response.context["orders"]] == [second.pk, first.pk]


def test_orders_need_login(client):
    response = client.get("/orders/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")


def test_order_detail_is_for_its_owner_only(client):
    owner, intruder = shopper(), shopper()
    order = pending_order((ProductFactory(name="Teapot"), 1), user=owner)

    client.force_login(intruder)
    foreign = client.get(f"/orders/{order.pk}/")
    client.force_login(owner)
    own = client.get(f"/orders/{order.pk}/")

    assert foreign.status_code == HTTPStatus.NOT_FOUND
    assert own.status_code == HTTPStatus.OK
    assert "Teapot" in own.content.decode()


def test_access_order_grants_entitlement(stripe_sessions):
    user = shopper()
    access = ProductFactory(stock=0, with_price__lookup_key="amazin_access_pass")
    order = pending_order((access, 1), user=user, kind=Order.Kind.ACCESS)
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert Entitlement.objects.live().filter(user=user, order=order).count() == 1


def test_success_page_of_an_access_order_leads_to_the_members_area(client, stripe_sessions):
    user = shopper()
    access = ProductFactory(stock=0, with_price__lookup_key="amazin_access_pass")
    order = pending_order((access, 1), user=user, kind=Order.Kind.ACCESS)
    stripe_sessions[order.stripe_session_id] = paid_session(order)
    client.force_login(user)

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.OK
    assert b'data-testid="access-granted"' in response.content
    assert b'href="/dashboard/"' in response.content


def test_cancelling_an_access_order_goes_back_to_the_pass(client, stripe_sessions):
    user = shopper()
    access = ProductFactory(stock=0, with_price__lookup_key="amazin_access_pass")
    order = pending_order((access, 1), user=user, kind=Order.Kind.ACCESS)
    stripe_sessions[order.stripe_session_id] = paid_session(order, payment_status="unpaid")
    client.force_login(user)

    response = client.get(f"/checkout/cancel/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/dashboard/purchase/"
    assert Order.objects.get(pk=order.pk).status == Order.Status.EXPIRED


def test_an_unfillable_order_nothing_was_charged_for_needs_no_refund(
    stripe_sessions, refunds, django_capture_on_commit_callbacks
):
    product = ProductFactory(stock=0)
    order = pending_order((product, 1))
    stripe_sessions[order.stripe_session_id] = paid_session(
        order, payment_status="no_payment_required", payment_intent=None
    )

    with django_capture_on_commit_callbacks(execute=True):
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    refunds.assert_not_called()
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert "nothing to refund" in order.problem


# Display data as long as Stripe allows: Stripe's API documents 5,000 characters for an
# address's fields (and names), 512 for an email address.
LONGEST = 5000
LONGEST_EMAIL = "x" * 64 + "@" + ".".join(["d" * 63] * 7)  # 512 characters


def test_stripes_longest_values_never_stop_a_paid_order_being_filled(
    client, stripe_sessions, django_capture_on_commit_callbacks
):
    """On PostgreSQL a 300-character name, a 40-character postal code, a 262-character email
    or a 256-character city failed fulfilment (`value too long`): the success page was a 500,
    the event failed on every retry, and the units went back on sale with the charge kept."""
    assert len(LONGEST_EMAIL) == 512
    product = ProductFactory(stock=4)
    order = pending_order((product, 1))
    address = {
        field: field[0].upper() * LONGEST
        for field in ("line1", "line2", "city", "postal_code", "state")
    }
    stripe_sessions[order.stripe_session_id] = paid_session(
        order,
        customer_details={"email": LONGEST_EMAIL},
        collected_information={
            "shipping_details": {"name": "N" * LONGEST, "address": address | {"country": "US"}}
        },
        shipping_cost={"shipping_rate": {"id": "shr_long", "display_name": "R" * LONGEST}},
        discounts=[{"promotion_code": {"id": "promo_long", "code": "P" * LONGEST}}],
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.OK
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert stock(product) == 3
    assert (order.email, order.shipping_name) == (LONGEST_EMAIL, "N" * LONGEST)
    assert order.shipping_postal_code == "P" * LONGEST
    assert order.shipping_city == "C" * LONGEST
    assert (order.shipping_rate_name, order.promotion_code) == ("R" * LONGEST, "P" * LONGEST)
    assert order.shipping_country == "US"
    assert [m.to for m in mail.outbox] == [[LONGEST_EMAIL]]
