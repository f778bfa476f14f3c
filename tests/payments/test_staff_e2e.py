"""Issue 11 end to end, over real HTTP through the emulator: a shopper pays with a shipping
address and a promotion code; staff mark the order shipped and refund part of it from the
admin (submitting the refund twice); a forged full-refund webhook changes nothing."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from accounts.models import Entitlement
from payments import checkout
from payments.models import Order, OrderEvent, Refund
from tests.payments.test_purchase_e2e import PAYS, Shopper, shop_factory  # noqa: F401
from tests.support.emulator import running_emulator, wait_until
from tests.support.stripe_events import event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]

ADDRESS = {
    "shipping_name": "Ada Lovelace",
    "shipping_line1": "12 St James's Square",
    "shipping_city": "London",
    "shipping_postal_code": "SW1Y 4JH",
    "shipping_country": "GB",
}


@pytest.fixture
def shop(settings, live_server, shop_factory):  # noqa: F811
    with running_emulator(
        forward_to=f"{live_server.url}/stripe/webhook/",
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
    ) as emulator:
        yield shop_factory(emulator)


def make_code(shop, code: str = "WELCOME10", percent_off: int = 10) -> None:
    stripe = shop.emulator.client()
    coupon = stripe.v1.coupons.create(params={"percent_off": percent_off, "duration": "once"})
    stripe.v1.promotion_codes.create(
        params={"code": code, "promotion": {"type": "coupon", "coupon": coupon.id}}
    )


def express_rate_id(page_html: str) -> str:
    found = re.search(r"value='(shr_[^']+)'[^>]*> Express shipping", page_html)
    assert found, page_html
    return found.group(1)


def paid_order_with_address_and_code(shop) -> tuple[Order, object, Shopper]:
    make_code(shop)
    teapot = shop.seed(name="Teapot", unit_amount=4800, stock=5)
    cups = shop.seed(name="Cups", unit_amount=1000, stock=9)
    shopper = Shopper(shop)
    shopper.add(teapot, 2)
    shopper.add(cups, 1)
    page_url = shopper.checkout()
    page = shopper.http.get(page_url, timeout=10).text

    success = shopper.pay_on_hosted_page(
        page_url,
        PAYS,
        **ADDRESS,
        shipping_rate=express_rate_id(page),
        promotion_code="welcome10",
    )
    shop.emulator.flush()
    order = Order.objects.get()
    return order, success, shopper


def test_pay_with_address_and_code_then_ship_and_refund_part(shop, admin_client):
    order, success, shopper = paid_order_with_address_and_code(shop)
    wait_until(lambda: len(mail.outbox) == 1, message="no confirmation email")

    # Stripe's amounts: 2 x 48 + 10 = 106, 10% off the goods, express shipping 15.
    assert (order.status, order.amount_subtotal, order.amount_discount) == ("paid", 10600, 1060)
    assert (order.amount_shipping, order.amount_total) == (1500, 10600 - 1060 + 1500)
    assert (order.promotion_code, order.shipping_rate_name) == (
        "WELCOME10",
        "Express shipping (1-2 days)",
    )
    assert (order.shipping_name, order.shipping_city, order.shipping_country) == (
        "Ada Lovelace",
        "London",
        "GB",
    )
    assert success.status_code == HTTPStatus.OK
    for shown in ("Ada Lovelace", "SW1Y 4JH London", "WELCOME10", "Express shipping", "$110.40"):
        assert shown in success.text, shown
    assert "&minus;$10.60" in success.text
    confirmation = mail.outbox[0].body
    for shown in ("Discount (WELCOME10): -$10.60", "Express shipping (1-2 days): $15.00"):
        assert shown in confirmation
    assert "Ada Lovelace" in confirmation and "We will email you when it ships" in confirmation

    admin_page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    for shown in ("$110.40", "$10.60 (WELCOME10)", "$15.00 (Express shipping (1-2 days))"):
        assert shown in admin_page, shown
    assert "Ada Lovelace" in admin_page and "11040" not in admin_page
    listing = admin_client.get("/admin/payments/order/?q=%23" + str(order.pk)).content.decode()
    assert "$110.40" in listing and "11040" not in listing

    # Staff ship it.
    shipped = admin_client.post(
        f"/admin/payments/order/{order.pk}/ship/",
        {"carrier": "Royal Mail", "tracking_number": "RM123456789GB"},
    )

    assert shipped.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.shipped_at is not None and order.tracking_number == "RM123456789GB"
    assert mail.outbox[-1].subject == f"Your Amazin order #{order.pk} has shipped"
    assert "RM123456789GB" in mail.outbox[-1].body and "Royal Mail" in mail.outbox[-1].body
    again = shopper.http.get(success.url, timeout=30)  # the shopper's page again
    assert (
        "Shipped" in again.text and "with Royal Mail, tracking number RM123456789GB" in again.text
    )
    assert "We will email you when it ships" not in again.text

    # Staff refund one teapot, with its stock back, and the form goes twice (double click).
    form_page = admin_client.get(f"/admin/payments/order/{order.pk}/refund/").content.decode()
    token = re.search(r'name="request_token" value="([0-9a-f]+)"', form_page).group(1)
    teapot_line = order.lines.get(product__name="Teapot")
    stock_before = teapot_line.product.__class__.objects.get(pk=teapot_line.product_id).stock
    form = {
        "request_token": token,
        f"line_{teapot_line.pk}": "1",
        "restock": "on",
        "reason": "Arrived chipped",
    }
    for line in order.lines.exclude(pk=teapot_line.pk):
        form[f"line_{line.pk}"] = "0"

    first = admin_client.post(f"/admin/payments/order/{order.pk}/refund/", form)
    second = admin_client.post(f"/admin/payments/order/{order.pk}/refund/", form)
    shop.emulator.flush()

    assert first.status_code == second.status_code == HTTPStatus.FOUND
    at_stripe = shop.emulator.client().v1.refunds.list(
        params={"payment_intent": order.stripe_payment_intent_id}
    )
    expected = 4800 - 4800 * 1060 // 10600  # the teapot less its share of the discount
    assert [r.amount for r in at_stripe.data] == [expected]
    wait_until(
        lambda: Order.objects.get(pk=order.pk).amount_refunded == expected,
        message="the refund was never recorded",
    )
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED
    refund = Refund.objects.get()
    assert (refund.stripe_refund_id, refund.amount, refund.status) == (
        at_stripe.data[0].id,
        expected,
        Refund.Status.SUCCEEDED,
    )
    assert refund.lines == {str(teapot_line.pk): 1} and refund.restocked
    assert teapot_line.product.__class__.objects.get(pk=teapot_line.product_id).stock == (
        stock_before + 1
    )
    history = list(order.events.values_list("kind", "amount", "actor__username"))
    admin_name = order.events.get(kind=OrderEvent.Kind.SHIPPED).actor.username
    assert history == [
        ("paid", order.amount_total, None),
        ("shipped", None, admin_name),
        ("refund_requested", expected, admin_name),
        ("refunded", expected, admin_name),
        ("stock_restored", None, admin_name),
    ]
    admin_page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    assert "Royal Mail RM123456789GB" in admin_page
    assert "$43.20" in admin_page and "Stock restored" in admin_page
    assert "Partly refunded" in admin_page
    refund_mail = [m for m in mail.outbox if "refund" in m.subject]
    assert len(refund_mail) == 1 and "$43.20" in refund_mail[0].body


def test_forged_full_refund_webhook_changes_nothing(shop, webhook):
    """Issue 10: a correctly signed charge.refunded that lies about the charge."""
    access = shop.seed(name="Members' pass", unit_amount=2500, stock=0)
    user = get_user_model().objects.create_user("member", "member@example.com", "pw-12345678")
    started = checkout.checkout_start(
        user=user,
        lines=[checkout.LineRequest(product_id=access.pk, quantity=1)],
        kind=Order.Kind.ACCESS,
    )
    shop.emulator.pay(started.order.stripe_session_id)
    shop.emulator.flush()
    order = wait_until(lambda: Order.objects.filter(status=Order.Status.PAID).first())
    stripe = shop.emulator.client()
    charge = stripe.v1.charges.list(params={"payment_intent": order.stripe_payment_intent_id})
    forged = {
        **charge.data[0].to_dict(),
        "amount_refunded": order.amount_total,
        "refunded": True,
    }
    entitled = Entitlement.objects.live().filter(user=user).exists()

    response = webhook.post(event("charge.refunded", forged))

    assert entitled
    assert not order.shipping_line1  # the pass asks for no address
    assert response.status_code == HTTPStatus.OK
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PAID, 0)
    assert Entitlement.objects.live().filter(user=user).exists()
    assert not Refund.objects.exists()
