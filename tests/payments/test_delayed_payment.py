"""A delayed payment (a bank transfer): Checkout completes unpaid, the money comes later.

The order leaves the cart at once (the browser can shop and check out again) and keeps its
stock held until Stripe says the payment succeeded or failed; the sweep asks Stripe about it
less and less often. Stripe is patched at payments/stripe_api.py.
"""

from datetime import timedelta
from http import HTTPStatus
from unittest import mock

import pytest
import stripe
from django.core import mail
from django.db.models import F
from django.utils import timezone

from cart.models import Cart, CartItem
from payments import checkout, delayed, fulfilment, settle, stripe_api
from payments.models import Order, reservation_holder
from store.models import Product, Reservation
from tests.factories import ProductFactory
from tests.support.fake_checkout import FakeCheckout
from tests.support.orders import browser_cart, paid_session, pending_order
from tests.support.stripe_events import event

pytestmark = pytest.mark.django_db


def on_its_way(order: Order, **fields) -> dict:
    """The order's session once the shopper chose a bank transfer: complete, not paid."""
    return paid_session(
        order,
        payment_status="unpaid",
        status="complete",
        payment_intent={
            "id": f"pi_test_{order.pk}",
            "object": "payment_intent",
            "status": "processing",
        },
        **fields,
    )


def failed(order: Order) -> dict:
    """The same session once the transfer bounced: Stripe's PaymentIntent wants a new method."""
    session = on_its_way(order)
    session["payment_intent"]["status"] = "requires_payment_method"
    return session


def available(product: Product) -> int:
    return Product.objects.with_reserved().get(pk=product.pk).available()


def stock(product: Product) -> int:
    return Product.objects.get(pk=product.pk).stock


def test_a_payment_on_its_way_takes_the_order_out_of_the_cart_and_keeps_the_hold(
    client, stripe_sessions, django_capture_on_commit_callbacks
):
    kettle, mug = ProductFactory(stock=5), ProductFactory(stock=5)
    client.post("/cart/add/", {"product": kettle.pk, "quantity": 2})
    client.post("/cart/add/", {"product": mug.pk, "quantity": 1})
    order = pending_order((kettle, 2), cart=Cart.objects.get())
    stripe_sessions[order.stripe_session_id] = on_its_way(order)

    with django_capture_on_commit_callbacks(execute=True):
        result = fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    order.refresh_from_db()
    assert result == order
    assert order.status == Order.Status.PROCESSING
    assert order.email == "payer@example.com"
    assert order.stripe_payment_intent_id == f"pi_test_{order.pk}"
    assert list(CartItem.objects.values_list("product_id", "quantity")) == [(mug.pk, 1)]
    assert (stock(kettle), available(kettle)) == (5, 3)  # held, not taken
    hold = Reservation.objects.get(holder=reservation_holder(order.pk))
    # Held for DELAYED_PAYMENT_HOLD_HOURS from checkout, by the reservation's own expiry.
    assert hold.expires_at == order.created_at + timedelta(hours=24)
    assert mail.outbox == []


def test_the_success_page_says_the_payment_is_awaited(client, stripe_sessions):
    order = pending_order((ProductFactory(stock=5), 1), cart=browser_cart(client))
    stripe_sessions[order.stripe_session_id] = on_its_way(order)

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "waiting for your payment" in html
    assert "Payment received" not in html


def test_cancel_after_choosing_a_bank_transfer_goes_to_the_success_page(client, stripe_sessions):
    order = pending_order((ProductFactory(stock=5), 1), cart=browser_cart(client))
    stripe_sessions[order.stripe_session_id] = on_its_way(order)

    response = client.get(f"/checkout/cancel/?session_id={order.stripe_session_id}")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/checkout/success/?session_id={order.stripe_session_id}"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-first", "no-webhook-yet"])
def test_the_same_browser_checks_out_again_while_the_transfer_is_on_its_way(
    client, webhook, webhook_first
):
    stripe = FakeCheckout()
    kettle, mug = ProductFactory(stock=5), ProductFactory(stock=5)
    with stripe.patched():
        client.post("/cart/add/", {"product": kettle.pk, "quantity": 2})
        client.post("/checkout/")
        first = Order.objects.get()
        stripe.sessions[first.stripe_session_id].update(on_its_way(first))
        if webhook_first:
            webhook.post(event("checkout.session.completed", {"id": first.stripe_session_id}))
        client.post("/cart/add/", {"product": mug.pk, "quantity": 1})

        response = client.post("/checkout/")

    second = Order.objects.exclude(pk=first.pk).get()
    assert response.status_code == HTTPStatus.SEE_OTHER
    assert response["Location"] == f"https://checkout.example/{second.pk}"
    assert Order.objects.get(pk=first.pk).status == Order.Status.PROCESSING
    assert list(second.lines.values_list("product_id", "quantity")) == [(mug.pk, 1)]
    assert (available(kettle), available(mug)) == (3, 4)


def test_the_transfer_arriving_fulfils_the_order_and_leaves_the_new_cart_alone(
    client, stripe_sessions, webhook, django_capture_on_commit_callbacks
):
    kettle = ProductFactory(stock=5)
    client.post("/cart/add/", {"product": kettle.pk, "quantity": 2})
    order = pending_order((kettle, 2), cart=Cart.objects.get())
    stripe_sessions[order.stripe_session_id] = on_its_way(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    client.post("/cart/add/", {"product": kettle.pk, "quantity": 1})  # shopping again
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with django_capture_on_commit_callbacks(execute=True):
        webhook.post(
            event("checkout.session.async_payment_succeeded", {"id": order.stripe_session_id})
        )

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert (stock(kettle), available(kettle)) == (3, 3)
    assert list(CartItem.objects.values_list("product_id", "quantity")) == [(kettle.pk, 1)]
    assert [m.subject for m in mail.outbox] == [f"Your Amazin order #{order.pk}"]


def test_a_failed_transfer_releases_the_hold_and_tells_the_shopper(
    stripe_sessions, webhook, django_capture_on_commit_callbacks
):
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    stripe_sessions[order.stripe_session_id] = on_its_way(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    stripe_sessions[order.stripe_session_id] = failed(order)

    with django_capture_on_commit_callbacks(execute=True):
        webhook.post(
            event("checkout.session.async_payment_failed", {"id": order.stripe_session_id})
        )

    order.refresh_from_db()
    assert order.status == Order.Status.FAILED
    assert "bank transfer" in order.problem
    assert (stock(kettle), available(kettle)) == (5, 5)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["payer@example.com"]
    assert "payment" in mail.outbox[0].subject and f"#{order.pk}" in mail.outbox[0].subject
    assert "did not arrive" in mail.outbox[0].body


def test_a_failure_event_stripe_does_not_confirm_changes_nothing(stripe_sessions, webhook):
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    stripe_sessions[order.stripe_session_id] = on_its_way(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    webhook.post(event("checkout.session.async_payment_failed", {"id": order.stripe_session_id}))

    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING
    assert available(kettle) == 3


# The sweep


def test_the_sweep_asks_stripe_about_a_payment_on_its_way_less_and_less_often(
    settings, stripe_sessions
):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 7 * 24  # a shop that holds transfers for a week
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2), minutes=-1)  # the checkout's hold ran out
    stripe_sessions[order.stripe_session_id] = on_its_way(order)
    retrieve = stripe_api.checkout_session_retrieve

    settle.reservations_release_expired()
    asked = retrieve.call_count
    for _ in range(3):
        settle.reservations_release_expired()

    order.refresh_from_db()
    assert retrieve.call_count == asked  # not again at every sweep (every 30 s)
    assert order.status == Order.Status.PROCESSING
    assert available(kettle) == 3
    assert order.stripe_check_at > timezone.now() + timedelta(minutes=4)

    # Days later, still on its way: asked again when due, and the next look is hours away.
    Order.objects.filter(pk=order.pk).update(
        created_at=timezone.now() - timedelta(days=3), stripe_check_at=timezone.now()
    )
    settle.reservations_release_expired()
    settle.reservations_release_expired()

    order.refresh_from_db()
    assert retrieve.call_count == asked + 1
    assert order.stripe_check_at > timezone.now() + timedelta(hours=5)
    assert order.status == Order.Status.PROCESSING
    assert available(kettle) == 3


def test_the_next_look_grows_with_the_wait_between_bounds():
    now = timezone.now()

    def after(age: timedelta) -> timedelta:
        order = Order(created_at=now - age)
        return delayed.delayed_payment_next_check(order=order, now=now) - now

    assert after(timedelta(minutes=31)) == delayed.DELAYED_CHECK_MIN
    assert after(timedelta(hours=4)) == timedelta(hours=1)
    assert after(timedelta(hours=22)) == timedelta(hours=2)  # the end of the hold (24 h)
    assert after(timedelta(days=2)) == timedelta(hours=12)  # unheld: gaps up to a day
    assert after(timedelta(days=6)) == delayed.DELAYED_CHECK_MAX_UNHELD


def test_the_sweep_settles_a_transfer_whose_events_never_came(
    stripe_sessions, django_capture_on_commit_callbacks
):
    kettle = ProductFactory(stock=5)
    paid, bounced = pending_order((kettle, 1)), pending_order((kettle, 1))
    for order in (paid, bounced):
        stripe_sessions[order.stripe_session_id] = on_its_way(order)
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    stripe_sessions[paid.stripe_session_id] = paid_session(paid)
    stripe_sessions[bounced.stripe_session_id] = failed(bounced)
    Order.objects.update(stripe_check_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        settle.reservations_release_expired()

    assert Order.objects.get(pk=paid.pk).status == Order.Status.PAID
    assert Order.objects.get(pk=bounced.pk).status == Order.Status.FAILED
    assert (stock(kettle), available(kettle)) == (4, 4)
    assert len(mail.outbox) == 2


# The hold's end: a transfer that never comes gives its stock back after
# DELAYED_PAYMENT_HOLD_HOURS; Stripe cannot cancel it, so the order keeps waiting for its money.


def waiting(order: Order, stripe_sessions: dict, *, hours: float) -> None:
    """The order's transfer has been on its way `hours` (since checkout), and a look is due:
    its checkout completes now, then every moment of it moves `hours` into the past."""
    session_id = str(order.stripe_session_id)
    stripe_sessions[session_id] = on_its_way(order)
    fulfilment.fulfil_checkout_session(session_id=session_id)
    ago = timedelta(hours=hours)
    Order.objects.filter(pk=order.pk).update(
        created_at=F("created_at") - ago, stripe_check_at=timezone.now()
    )
    Reservation.objects.filter(holder=reservation_holder(order.pk)).update(
        expires_at=F("expires_at") - ago
    )


def test_a_transfers_stock_goes_back_on_sale_when_its_hold_ends_with_no_worker_running(
    settings, stripe_sessions
):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    waiting(order, stripe_sessions, hours=23)
    held = available(kettle)

    later = timezone.now() + timedelta(hours=1, seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        after = available(kettle)

    assert (held, after) == (3, 5)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING


def test_the_look_at_the_end_of_the_hold_drops_it_and_tells_the_shopper_once(
    settings, stripe_sessions, django_capture_on_commit_callbacks
):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    waiting(order, stripe_sessions, hours=25)

    with django_capture_on_commit_callbacks(execute=True):
        settle.reservations_release_expired()
        Order.objects.filter(pk=order.pk).update(stripe_check_at=timezone.now())
        settle.reservations_release_expired()

    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING  # Stripe cannot cancel it: still awaited
    assert "went back on sale" in order.problem
    assert (stock(kettle), available(kettle)) == (5, 5)
    assert not Reservation.objects.filter(holder=reservation_holder(order.pk)).exists()
    assert [m.subject for m in mail.outbox] == [
        f"Your Amazin order #{order.pk}: your items are no longer held"
    ]
    assert "refund" in mail.outbox[0].body and "back on sale" in mail.outbox[0].body
    assert order.stripe_check_at > timezone.now() + timedelta(hours=5)  # still looked at
    assert not hasattr(stripe_api, "payment_intent_cancel")  # Stripe refuses it: never asked


def test_money_that_arrives_after_the_hold_ended_is_filled_if_the_stock_is_there(
    settings, stripe_sessions, django_capture_on_commit_callbacks
):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    waiting(order, stripe_sessions, hours=30)
    settle.reservations_release_expired()
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with django_capture_on_commit_callbacks(execute=True):
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert order.problem == ""
    assert (stock(kettle), available(kettle)) == (3, 3)


def test_money_that_arrives_after_the_stock_was_sold_is_refunded_automatically(
    settings, stripe_sessions, refunds, django_capture_on_commit_callbacks
):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle = ProductFactory(stock=2)
    order = pending_order((kettle, 2))
    waiting(order, stripe_sessions, hours=30)
    settle.reservations_release_expired()
    other = pending_order((kettle, 2))  # the units, back on sale, sold to someone else
    stripe_sessions[other.stripe_session_id] = paid_session(other)
    fulfilment.fulfil_checkout_session(session_id=other.stripe_session_id)
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with django_capture_on_commit_callbacks(execute=True):
        fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)

    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    refunds.assert_called_once()
    assert refunds.call_args.kwargs["payment_intent"] == f"pi_test_{order.pk}"
    assert stock(kettle) == 0
    assert Order.objects.get(pk=other.pk).status == Order.Status.PAID


def test_money_that_arrived_just_before_the_end_of_the_hold_is_filled(
    settings, stripe_sessions, django_capture_on_commit_callbacks
):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    waiting(order, stripe_sessions, hours=25)
    stripe_sessions[order.stripe_session_id] = paid_session(order)

    with django_capture_on_commit_callbacks(execute=True):
        settle.reservations_release_expired()

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert (stock(kettle), available(kettle)) == (3, 3)
    assert [m.subject for m in mail.outbox] == [f"Your Amazin order #{order.pk}"]


def test_stripe_down_at_the_end_of_the_hold_tells_nobody_until_it_answers(
    settings, stripe_sessions, django_capture_on_commit_callbacks
):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    waiting(order, stripe_sessions, hours=25)

    with mock.patch(
        "payments.stripe_api.checkout_session_retrieve",
        side_effect=stripe.APIConnectionError("Stripe is unreachable"),
    ):
        settle.reservations_release_expired()

    assert Order.objects.get(pk=order.pk).status == Order.Status.PROCESSING
    assert available(kettle) == 5  # the reservation ran out on time all the same
    assert mail.outbox == []
    Order.objects.filter(pk=order.pk).update(stripe_check_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        settle.reservations_release_expired()
    assert len(mail.outbox) == 1


def test_a_transfer_within_its_hold_is_left_on_its_way(settings, stripe_sessions):
    settings.DELAYED_PAYMENT_HOLD_HOURS = 24
    kettle = ProductFactory(stock=5)
    order = pending_order((kettle, 2))
    waiting(order, stripe_sessions, hours=23)

    settle.reservations_release_expired()

    order.refresh_from_db()
    assert order.status == Order.Status.PROCESSING
    assert (stock(kettle), available(kettle)) == (5, 3)
    # The next look is at the end of the hold at the latest, when the shopper is told.
    assert order.stripe_check_at <= order.created_at + timedelta(hours=24)
    assert mail.outbox == []


def test_a_payment_on_its_way_counts_against_its_address_hold_limit(settings, stripe_sessions):
    settings.CHECKOUT_MAX_UNITS_PER_ADDRESS = 3
    kettle = ProductFactory(stock=10)
    order = pending_order((kettle, 2), client_ip="203.0.113.9")
    stripe_sessions[order.stripe_session_id] = on_its_way(order)
    fulfilment.fulfil_checkout_session(session_id=order.stripe_session_id)
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now())

    with (
        mock.patch("payments.stripe_api.checkout_session_create") as create,
        pytest.raises(checkout.CheckoutLimited),
    ):
        checkout.checkout_start(
            user=None,
            lines=[checkout.LineRequest(product_id=kettle.pk, quantity=2)],
            client_ip="203.0.113.9",
        )

    create.assert_not_called()


def test_a_checkout_that_read_the_cart_just_before_the_order_left_it_uses_the_cart_as_it_is(
    client, stripe_sessions
):
    """The transfer's checkout completes (its lines leave the cart) between a new checkout
    reading the cart and locking it: the new order must not be for the lines just bought."""
    fake = FakeCheckout()
    kettle, mug = ProductFactory(stock=5), ProductFactory(stock=5)
    client.post("/cart/add/", {"product": kettle.pk, "quantity": 2})
    with fake.patched():
        client.post("/checkout/")
    first = Order.objects.get()
    fake.sessions[first.stripe_session_id].update(on_its_way(first))
    client.post("/cart/add/", {"product": mug.pk, "quantity": 1})
    real_read = checkout._lines_from_cart
    reads = []

    def read_then_complete(cart):
        lines = real_read(cart)
        if not reads:  # the first read, then the webhook wins the race
            fulfilment.fulfil_checkout_session(session_id=first.stripe_session_id)
        reads.append(lines)
        return lines

    with fake.patched(), mock.patch("payments.checkout._lines_from_cart", read_then_complete):
        response = client.post("/checkout/")

    second = Order.objects.exclude(pk=first.pk).get()
    assert response.status_code == HTTPStatus.SEE_OTHER
    assert Order.objects.get(pk=first.pk).status == Order.Status.PROCESSING
    assert list(second.lines.values_list("product_id", "quantity")) == [(mug.pk, 1)]
    assert (available(kettle), available(mug)) == (3, 4)
