"""A shopper in headless Chromium: grid -> add -> cart -> checkout -> the emulator's page ->
pay -> success page -> the order in /orders/. Screenshots: test-artifacts/purchase/."""

from __future__ import annotations

import re

import pytest

from cart.models import CartItem
from payments.models import Order
from store.models import Product
from tests.factories import ProductFactory, UserFactory
from tests.support.browser import chromium_page, fill_shipping_address
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.emulator]


@pytest.fixture
def emulator(emulated_stripe):
    with emulated_stripe() as emulator:
        yield emulator


def seed(emulator, *, name: str, unit_amount: int, stock: int) -> Product:
    stripe = emulator.client()
    product = stripe.v1.products.create(
        params={"name": name, "images": ["/static/img/products/teapot.svg"]}
    )
    price = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": unit_amount, "currency": "usd"}
    )
    stripe.v1.products.update(product.id, params={"default_price": price.id})
    local = wait_until(
        lambda: Product.objects.visible().filter(stripe_id=product.id).first(), timeout=15
    )
    Product.objects.filter(pk=local.pk).update(stock=stock)
    return local


def test_a_shopper_buys_a_teapot_in_a_real_browser(live_server, emulator):
    teapot = seed(emulator, name="Teapot", unit_amount=4800, stock=3)
    user = UserFactory(username="kim@example.com", email="kim@example.com")
    user.set_password("correct horse battery")
    user.save()

    with chromium_page(artifacts="purchase") as browser:
        page = browser.page
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "kim@example.com")
        page.fill("input[name=password]", "correct horse battery")
        page.click("form button:has-text('Log in')")
        page.wait_for_url(f"{live_server.url}/")
        browser.shot("grid")

        page.click(f"#product-{teapot.pk} [data-testid=add-to-cart]")
        page.wait_for_function("document.querySelector('#cart-count').textContent.trim() === '1'")
        page.get_by_text("Added Teapot to your cart.").wait_for()
        browser.shot("added")
        url_after_add = page.url

        page.click("[data-testid=cart-link]")
        page.wait_for_url(f"{live_server.url}/cart/")
        total = page.text_content("[data-testid=cart-total]")
        browser.shot("cart")

        page.click("[data-testid=checkout]")
        page.wait_for_url(re.compile(re.escape(emulator.api_base) + r"/pay/cs_"))
        page.get_by_text("Pay with card").wait_for()
        browser.shot("checkout-page")
        held = Product.objects.with_reserved().get(pk=teapot.pk).available()

        page.fill("#email", "kim@example.com")
        page.fill("#card", "4242 4242 4242 4242")
        page.fill("#expiry", "12 / 34")
        page.fill("#cvc", "123")
        fill_shipping_address(page)
        browser.shot("card-filled")
        page.click("button:has-text('Pay')")
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/checkout/success/"))
        heading = page.text_content("[data-testid=success-heading]")
        browser.shot("success")

        page.click("[data-testid=orders-link]")
        page.wait_for_url(f"{live_server.url}/orders/")
        listed = page.locator("[data-testid=order]").all_text_contents()
        status = page.text_content("[data-testid=order-status]")
        browser.shot("orders")

    assert url_after_add == f"{live_server.url}/"  # htmx: no page load
    assert total == "$48.00"
    assert held == 2
    assert heading == "Thank you for your order"
    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert order.user == user
    assert len(listed) == 1 and "Teapot" in listed[0] and "$48.00" in listed[0]
    assert status == "Paid"
    assert Product.objects.get(pk=teapot.pk).stock == 2
    assert not CartItem.objects.exists()
    assert [p.name for p in browser.shots] == [
        "01-grid.png",
        "02-added.png",
        "03-cart.png",
        "04-checkout-page.png",
        "05-card-filled.png",
        "06-success.png",
        "07-orders.png",
    ]


def test_htmx_add_beyond_stock_shows_the_message_without_reload(live_server):
    lamp = ProductFactory(name="Lamp", stock=1)

    with chromium_page(artifacts="cart-conflict") as browser:
        page = browser.page
        page.goto(f"{live_server.url}/")
        button = page.locator(f"#product-{lamp.pk} [data-testid=add-to-cart]")
        button.click()
        page.get_by_text("Added Lamp to your cart.").wait_for()
        button.click()
        page.get_by_text("Only 1 of Lamp available.").wait_for()
        count = page.text_content("#cart-count")
        browser.shot("conflict")
        url = page.url

    assert url == f"{live_server.url}/"
    assert count.strip() == "1"
    assert CartItem.objects.get().quantity == 1


def test_a_double_click_on_checkout_then_a_second_tab_open_one_session(live_server, emulator):
    lamp = seed(emulator, name="Lamp", unit_amount=2000, stock=5)

    with chromium_page(artifacts="double-click") as browser:
        page = browser.page
        page.goto(f"{live_server.url}/")
        page.click(f"#product-{lamp.pk} [data-testid=add-to-cart]")
        page.wait_for_function("document.querySelector('#cart-count').textContent.trim() === '1'")
        page.goto(f"{live_server.url}/cart/")
        second_tab = page.context.new_page()
        second_tab.goto(f"{live_server.url}/cart/")

        page.dblclick("[data-testid=checkout]")
        page.wait_for_url(re.compile(re.escape(emulator.api_base) + r"/pay/cs_"))
        second_tab.click("[data-testid=checkout]")
        second_tab.wait_for_url(re.compile(re.escape(emulator.api_base) + r"/pay/cs_"))
        browser.shot("both-tabs-on-checkout")

        assert page.url == second_tab.url
    order = Order.objects.get()
    assert order.status == Order.Status.PENDING
    assert len(emulator.client().v1.checkout.sessions.list().data) == 1
    assert Product.objects.with_reserved().get(pk=lamp.pk).available() == 4
