"""Guests follow their order: every email about an order links to a status page that needs
no account, by a signed link that names that order only; a changed link is a 404."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest
from django.core import mail, signing
from django.utils import timezone

from payments import order_status
from payments.emails import SUBJECTS, order_email_send
from payments.models import Order, Refund
from tests.factories import OrderFactory, OrderLineFactory, ProductFactory

pytestmark = pytest.mark.django_db

# Every email to a shopper about an order, as the templates on disk say (a new one is in).
ORDER_EMAILS = sorted(
    path.stem
    for path in (Path(__file__).resolve().parents[2] / "templates" / "emails").glob("order_*.txt")
)


@pytest.fixture
def shipped():
    order = OrderFactory(
        email="guest@example.com",
        status=Order.Status.PARTIALLY_REFUNDED,
        amount_subtotal=4800,
        amount_total=4800,
        amount_refunded=1200,
        paid_at=timezone.now(),
        shipped_at=timezone.now(),
        carrier="Royal Mail",
        tracking_number="RM123456789GB",
        shipping_name="Ada Lovelace",
        shipping_line1="12 St James's Square",
        shipping_city="London",
        shipping_postal_code="SW1Y 4JH",
        shipping_country="GB",
    )
    OrderLineFactory(
        order=order, product=ProductFactory(name="Teapot"), quantity=2, unit_amount=2400
    )
    Refund.objects.create(order=order, amount=1200, currency="usd", status="succeeded")
    Refund.objects.create(order=order, amount=900, currency="usd", status="failed")
    return order


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_the_status_link_shows_the_order_to_a_guest(client, shipped):
    OrderFactory(email="someone-else@example.com", status=Order.Status.PAID)
    url = order_status.order_status_url(shipped)

    response = client.get(path_of(url))

    html = response.content.decode()
    assert url.startswith("http://testserver/orders/status/")
    assert response.status_code == HTTPStatus.OK
    for shown in (
        f"Order #{shipped.pk}",
        "2 &times; Teapot",
        "Partly refunded",
        "Ada Lovelace",
        "London<br>SW1Y 4JH<br>United Kingdom",
        "Royal Mail, tracking number RM123456789GB",
        "Refunded on",
        "$12.00",
    ):
        assert shown in html, shown
    assert "$9.00" not in html  # a failed attempt is staff's business
    assert "someone-else@example.com" not in html
    assert response["Cache-Control"] == "private, no-store"
    assert '<meta name="robots" content="noindex, nofollow">' in html


def test_a_changed_link_is_a_404(client, shipped):
    token = order_status.order_status_token(shipped)
    other = OrderFactory()
    forged = signing.Signer(salt="another").sign_object([other.pk, "0" * 16])
    # The same signature under another order's id, and a well-signed id with a wrong
    # fingerprint (an order that got an old id again in a reset database).
    payload, signature = token.rsplit(":", 1)
    stolen = signing.Signer(salt=order_status.SALT).sign_object([other.pk, "0" * 16])

    paths = [
        f"/orders/status/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}/",
        f"/orders/status/{payload}x:{signature}/",
        f"/orders/status/{forged}/",
        f"/orders/status/{stolen}/",
        "/orders/status/nothing/",
        f"/orders/status/{shipped.pk}/",
    ]

    assert [client.get(p).status_code for p in paths] == [HTTPStatus.NOT_FOUND] * len(paths)
    assert client.get(f"/orders/status/{token}/").status_code == HTTPStatus.OK


def test_the_signed_link_names_no_secret(shipped):
    token = order_status.order_status_token(shipped)

    assert (
        shipped.idempotency_token not in signing.b64_decode(token.split(":")[0].encode()).decode()
    )


def test_every_email_about_an_order_is_checked_for_its_link():
    assert {*SUBJECTS, "order_refund_issued", "order_refund_failed"} <= set(ORDER_EMAILS)


@pytest.mark.parametrize("template", ORDER_EMAILS)
def test_every_email_about_an_order_links_to_its_status_page(shipped, template):
    refund = shipped.refunds.first()

    order_email_send.call(order_id=shipped.pk, template=template, subject="s", refund_id=refund.pk)

    (message,) = mail.outbox
    url = order_status.order_status_url(shipped)
    html = message.alternatives[0][0]
    assert url in message.body
    assert f'href="{url}"' in html
    assert f"/orders/{shipped.pk}/" not in message.body + html  # the login-only page


def test_owners_keep_their_own_order_page(client, shipped):
    from tests.factories import UserFactory

    owner = UserFactory()
    Order.objects.filter(pk=shipped.pk).update(user=owner)
    client.force_login(owner)

    response = client.get(f"/orders/{shipped.pk}/")

    assert response.status_code == HTTPStatus.OK
    assert "Refunded on" in response.content.decode()


def test_the_order_reads_top_to_bottom(client, shipped):
    Order.objects.filter(pk=shipped.pk).update(
        amount_subtotal=5000,
        amount_discount=500,
        amount_shipping=700,
        amount_tax=300,
        amount_total=5500,
        promotion_code="WELCOME10",
        shipping_rate_name="Express",
    )

    html = client.get(path_of(order_status.order_status_url(shipped))).content.decode()

    order = [html.index(word) for word in ("Subtotal", "Discount", "Express", "Tax", ">Total<")]
    assert order == sorted(order)
    assert html.index(">Total<") < html.index(">Refunded<") < html.index("Shipping to")


def test_the_status_page_says_only_what_stripe_accepted(client, shipped):
    Refund.objects.create(order=shipped, amount=700, currency="usd", status="requested")
    Refund.objects.create(order=shipped, amount=300, currency="usd", status="requires_action")
    Order.objects.filter(pk=shipped.pk).update(amount_disputed=1100)

    html = client.get(path_of(order_status.order_status_url(shipped))).content.decode()

    refunds = html.split('data-testid="order-refunds"')[1].split("</section>")[0]
    assert "$3.00" in refunds and "On its way since" in refunds  # Stripe accepted it
    assert "$7.00" not in refunds  # no answer from Stripe yet: not promised to the shopper
    disputed = html.split('data-testid="order-disputed"')[1].split("</div>")[0]
    assert "Returned by your bank" in disputed and "$11.00" in disputed
