"""A new shopper in headless Chromium: sign up, buy the pass on the emulator's page, enter."""

from __future__ import annotations

import re

import pytest

from accounts import services
from accounts.models import Entitlement
from tests.support.browser import chromium_page
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.emulator]


@pytest.fixture
def shop(live_server, emulated_stripe):
    """The live server wired to an emulator, with the pass created in it and synced."""
    with emulated_stripe() as emulator:
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
        emulator.flush()
        wait_until(lambda: services.access_price(), message="the pass never synced")
        yield live_server.url, emulator


def test_signup_purchase_pay_enter(shop):
    base, emulator = shop
    expect = pytest.importorskip("playwright.sync_api").expect
    email = "newcomer@example.com"

    with chromium_page(artifacts="members") as browser:
        page = browser.page
        page.goto(f"{base}/")
        page.get_by_test_id("signup-link").click()
        page.locator("#id_email").fill(email)
        page.locator("#id_password1").fill("plum-orchard-velvet-42")
        page.locator("#id_password2").fill("plum-orchard-velvet-42")
        browser.shot("signup")
        page.get_by_role("button", name="Sign up").click()

        expect(page.get_by_test_id("current-user")).to_have_text(email)
        browser.shot("home logged in")
        page.get_by_test_id("access-purchase").click()

        page.wait_for_url(re.compile(re.escape(emulator.api_base) + r"/pay/cs_"))
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_label("Expiry").fill("12 / 34")
        page.get_by_label("CVC").fill("123")
        page.get_by_label("Name on card").fill("New Comer")
        browser.shot("emulator checkout")
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()

        page.wait_for_url(re.compile(re.escape(base) + r"/checkout/success/"))
        browser.shot("success")
        page.goto(f"{base}/")
        page.get_by_test_id("access-enter").click()

        expect(page.get_by_test_id("dashboard")).to_be_visible()
        expect(page.get_by_test_id("orders")).to_contain_text("$9.00")
        browser.shot("dashboard")

    emulator.flush()
    assert Entitlement.objects.filter(user__email=email).count() == 1
