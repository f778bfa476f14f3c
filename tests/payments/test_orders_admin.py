from http import HTTPStatus

import pytest
from django.utils import timezone

from payments.models import Order
from tests.factories import OrderFactory, OrderLineFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order():  # type: ignore[no-untyped-def]
    product = ProductFactory(name="Teapot")
    order = OrderFactory(
        email="kim@example.com",
        stripe_session_id="cs_test_admin1",
        status=Order.Status.PAID,
        amount_total=4800,
        paid_at=timezone.now(),
    )
    OrderLineFactory(order=order, product=product, quantity=2, unit_amount=2400)
    return order


def test_admin_finds_orders_by_email_and_session(admin_client, order):
    by_email = admin_client.get("/admin/payments/order/?q=kim@example.com")
    by_session = admin_client.get("/admin/payments/order/?q=cs_test_admin1")
    by_status = admin_client.get("/admin/payments/order/?status__exact=refunded")

    assert by_email.status_code == HTTPStatus.OK
    assert by_email.context["cl"].result_count == 1
    assert by_session.context["cl"].result_count == 1
    assert by_status.context["cl"].result_count == 0


def test_admin_order_page_shows_lines_and_money_read_only(admin_client, order):
    response = admin_client.get(f"/admin/payments/order/{order.pk}/change/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Teapot" in html
    assert 'name="amount_total"' not in html  # shown, not editable
    assert 'name="lines-0-unit_amount"' not in html
