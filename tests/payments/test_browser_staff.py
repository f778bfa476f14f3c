"""Issue 11 in a real browser, at 1280 px and on a 375 px phone: the shopper pays with a
shipping address, an express rate and WELCOME10 on the hosted page; staff find the order in
the admin, mark it shipped and refund one line with a double click (one refund at Stripe);
the product list's stock field is on screen. Screenshots: test-artifacts/staff-<width>/."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from payments.models import Order, OrderEvent, Refund
from tests.payments.test_purchase_e2e import shop_factory  # noqa: F401
from tests.payments.test_staff_e2e import ADDRESS, make_code, shop  # noqa: F401
from tests.support.browser import chromium_page, fill_shipping_address
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.emulator]

ON_SCREEN = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const box = el.getBoundingClientRect();
  return box.left >= 0 && box.right <= window.innerWidth && box.width > 0;
}"""


@pytest.mark.parametrize("viewport", [(1280, 900), (375, 812)], ids=["1280", "375"])
def test_pay_ship_and_refund_in_a_browser(shop, live_server, viewport):  # noqa: F811
    make_code(shop)
    teapot = shop.seed(name="Teapot", unit_amount=4800, stock=5)
    staff = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw-staff-1")
    url = live_server.url

    with chromium_page(artifacts=f"staff-{viewport[0]}", viewport=viewport) as browser:
        page = browser.page
        page.goto(f"{url}/products/{teapot.pk}/")
        page.click("[data-testid=add-to-cart]")
        page.wait_for_function("document.querySelector('#cart-count').textContent.trim() === '1'")
        page.goto(f"{url}/cart/")
        page.click("[data-testid=checkout]")
        page.wait_for_url(re.compile(re.escape(shop.emulator.api_base) + r"/pay/cs_"))
        browser.shot("checkout")
        page.check("input[name=shipping_rate] >> nth=1")  # Express
        page.fill("#promotion_code", "WELCOME10")
        page.click("button:has-text('Apply')")
        page.get_by_text("Discount WELCOME10").wait_for()
        total_after_code = page.text_content(".total")
        page.fill("#email", "ada@example.com")
        page.fill("#card", "4242 4242 4242 4242")
        page.fill("#expiry", "12 / 34")
        page.fill("#cvc", "123")
        fill_shipping_address(page, ADDRESS)
        browser.shot("checkout-filled")
        page.click("button:has-text('Pay')")
        page.wait_for_url(re.compile(re.escape(url) + r"/checkout/success/"))
        success = page.text_content("main")
        browser.shot("success")

        page.goto(f"{url}/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "pw-staff-1")
        page.click("input[type=submit]")
        page.goto(f"{url}/admin/store/product/")
        stock_on_screen = page.evaluate(ON_SCREEN, "input[name=form-0-stock]")
        browser.shot("products")
        order = Order.objects.get()
        page.goto(f"{url}/admin/payments/order/?q=%23{order.pk}")
        browser.shot("orders")
        page.click(f"a[href*='/admin/payments/order/{order.pk}/change/']")
        page.click("text=Mark shipped")
        page.fill("#id_carrier", "Royal Mail")
        page.fill("#id_tracking_number", "RM123456789GB")
        page.click("input[type=submit]")
        page.get_by_text("marked shipped").wait_for()
        page.click(".object-tools >> text=Refund")  # not the sidebar's "Refunds"
        line = order.lines.get()
        page.fill(f"#id_line_{line.pk}", "1")
        page.fill("#id_reason", "Arrived chipped")
        browser.shot("refund-form")
        page.dblclick("input[type=submit]")  # the double click of the issue
        # Two submits: the second waits for the first to finish at Stripe (slow on a busy box).
        page.get_by_text("Refunded $43.20").first.wait_for(timeout=30_000)
        shop.emulator.flush()
        wait_until(lambda: Order.objects.get().status == Order.Status.PARTIALLY_REFUNDED)
        page.reload()
        history = page.text_content("#events-group")
        browser.shot("order-history")

    assert "Discount WELCOME10" not in total_after_code  # the big total only
    assert total_after_code == "$58.20"  # 48 - 4.80 + 15 express
    for shown in ("Ada Lovelace", "London", "WELCOME10", "Express shipping", "$58.20"):
        assert shown in success, shown
    assert stock_on_screen is True
    at_stripe = shop.emulator.client().v1.refunds.list(
        params={"payment_intent": order.stripe_payment_intent_id}
    )
    assert [r.amount for r in at_stripe.data] == [4320]
    assert Refund.objects.count() == 1
    assert list(OrderEvent.objects.values_list("kind", flat=True)) == [
        "paid",
        "shipped",
        "refund_requested",
        "refunded",
        "stock_restored",  # the form's "put the stock back" is ticked by default
    ]
    assert "Royal Mail RM123456789GB" in history and "$43.20" in history
    assert staff.username in history
    assert any("has shipped" in m.subject for m in mail.outbox)
