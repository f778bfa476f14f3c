"""The shop owner's day in headless Chromium, at 1280 px and on a 375 px phone: a guest
finds a product without a picture and a missing page; shop staff open the staff home and
an order, mark it shipped; the guest follows it from the email, with no account; a staff
member outside the "Shop staff" group cannot refund. Every page fits the screen (wide
tables scroll in their box), the shop's pages and the staff home pass axe-core with no
finding of any impact. Screenshots: test-artifacts/owner-1280/, test-artifacts/owner-375/.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone

from payments.models import Order, Refund, StripeEvent
from tests.factories import OrderFactory, OrderLineFactory, ProductFactory
from tests.support.browser import BrowserPage, chromium_page
from tests.support.staff import shop_staff_join
from tests.test_accessibility import axe_violations

# Elements past the screen's right edge, except inside a box that scrolls sideways (a wide
# table in the admin): those scroll in their box, the page itself does not.
LAYOUT = """() => {
  const scrolls = (el) => {
    for (let a = el.parentElement; a; a = a.parentElement) {
      const x = getComputedStyle(a).overflowX;
      if (x === 'auto' || x === 'scroll') return a;
    }
    return null;
  };
  const all = [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .filter((el) => !el.closest('.sr-only, .skip-link, .visually-hidden'));
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ')[0] : '');
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    wide: all.filter((el) => !scrolls(el)).map(describe).slice(0, 5),
    scrolled: [...new Set(all.map(scrolls).filter(Boolean).map(describe))],
  };
}"""

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "correct horse battery"


def person(username: str, *, group: bool = False, superuser: bool = False) -> User:
    user = User.objects.create_user(username, f"{username}@amazin.example", PASSWORD)
    user.is_staff, user.is_superuser = True, superuser
    user.save()
    if group:
        shop_staff_join(user)
    return user


def seed() -> dict[str, Any]:
    teapot = ProductFactory(
        name="Cast iron teapot", stock=3, images=["/static/img/products/teapot.svg"]
    )
    spoon = ProductFactory(name="Plain wooden spoon", stock=12, images=[])
    ProductFactory(name="Kettle", stock=9, images=["/static/img/products/kettle.svg"])
    now = timezone.now()
    order = OrderFactory.create(
        email="guest@example.com",
        status=Order.Status.PARTIALLY_REFUNDED,
        amount_subtotal=10800,
        amount_discount=1080,
        amount_shipping=1500,
        shipping_rate_name="Express shipping (1-2 days)",
        amount_total=11220,
        amount_refunded=2160,
        promotion_code="WELCOME10",
        paid_at=now,
        stripe_payment_intent_id="pi_test_owner_walk_with_a_long_identifier_0123456789",
        shipping_name="Grace Hopper",
        shipping_line1="1 Market Street",
        shipping_line2="Suite 200, the floor with the very long corridor",
        shipping_city="San Francisco",
        shipping_state="CA",
        shipping_postal_code="94105",
        shipping_country="US",
    )
    line = OrderLineFactory.create(order=order, product=teapot, quantity=2, unit_amount=4800)
    OrderLineFactory(order=order, product=spoon, quantity=1, unit_amount=1200)
    Refund.objects.create(
        order=order,
        amount=2160,
        currency="usd",
        status="succeeded",
        stripe_refund_id="re_test_owner_walk_0123456789abcdef",
        lines={str(line.pk): 1},
        restock=True,
        restocked=True,
        reason="Arrived chipped, and the box was crushed on one side",
    )
    Refund.objects.create(
        order=order, amount=500, currency="usd", status="failed", error="Charge disputed."
    )
    for days in (1, 3, 8, 15):
        OrderFactory(
            status=Order.Status.PAID, amount_total=2500 * days, paid_at=now - timedelta(days=days)
        )
    OrderFactory(status=Order.Status.EXPIRED, amount_total=999)  # abandoned
    StripeEvent.objects.create(
        stripe_id="evt_test_owner_walk",
        type="charge.refunded",
        stripe_created=int(now.timestamp()),
        status=StripeEvent.Status.FAILED,
        error="Stripe could not be reached.",
        payload={
            "id": "evt_test_owner_walk",
            "type": "charge.refunded",
            "created": int(now.timestamp()),
            "data": {"object": {"id": "ch_" + "x" * 120, "amount_refunded": 2160}},
        },
    )
    return {"order": order, "spoon": spoon, "teapot": teapot}


class Walk:
    """Visits pages, keeps a screenshot of each, and what axe and the layout say of it."""

    def __init__(self, browser: BrowserPage, url: str) -> None:
        self.browser, self.url = browser, url
        self.layout: dict[str, dict[str, Any]] = {}
        self.axe: dict[str, list[str]] = {}

    def look(self, name: str, page: Any = None) -> None:
        page = page or self.browser.page
        page.wait_for_load_state("load")
        if page is self.browser.page:
            self.browser.shot(name)
        else:
            assert self.browser.artifacts is not None
            page.screenshot(path=str(self.browser.artifacts / f"{name}.png"), full_page=True)
        self.layout[name] = page.evaluate(LAYOUT)
        self.axe[name] = axe_violations(page)

    def too_wide(self) -> dict[str, Any]:
        return {
            name: (facts["scrollWidth"], facts["wide"])
            for name, facts in self.layout.items()
            if facts["scrollWidth"] > facts["innerWidth"] or facts["wide"]
        }


def admin_login(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{url}/admin/")


@pytest.mark.parametrize("viewport", [(1280, 900), (375, 812)], ids=["1280", "375"])
def test_the_shop_owners_day(live_server, settings, viewport):
    settings.SITE_URL = live_server.url  # the links in emails
    url = live_server.url
    seeded = seed()
    order, spoon = seeded["order"], seeded["spoon"]
    person("sam", group=True)
    person("nico")
    person("boss", superuser=True)

    with chromium_page(artifacts=f"owner-{viewport[0]}", viewport=viewport) as browser:
        walk, page = Walk(browser, url), browser.page

        # A guest: the grid and a product without a picture, a page that does not exist.
        page.goto(f"{url}/")
        walk.look("grid")
        page.goto(f"{url}/products/{spoon.pk}/")
        page.locator("[data-testid=no-image]").wait_for()
        walk.look("product-without-image")
        missing = page.goto(f"{url}/no-such-page/")
        walk.look("404")

        # Shop staff: the staff home, the orders, an order; they mark it shipped.
        admin_login(page, url, "sam")
        page.locator("[data-testid=staff-home]").wait_for()
        walk.look("staff-home")
        home_text = page.text_content("[data-testid=staff-home]")
        page.click("text=Orders to ship")
        walk.look("orders-to-ship")
        page.goto(f"{url}/admin/payments/order/{order.pk}/change/")
        walk.look("order")
        page.click("text=Mark shipped")
        page.fill("#id_carrier", "UPS")
        page.fill("#id_tracking_number", "1Z999AA10123456784")
        walk.look("ship-form")
        page.click("input[type=submit]")
        page.get_by_text("marked shipped").wait_for()
        page.goto(f"{url}/admin/payments/order/{order.pk}/refund/")
        walk.look("refund-form")
        page.goto(f"{url}/admin/store/product/")
        walk.look("products")

        # The guest follows the order from the "shipped" email, with no account.
        (email,) = [m for m in mail.outbox if "has shipped" in m.subject]
        link = re.search(r"https?://\S+/orders/status/\S+/", email.body).group(0)
        guest = browser.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        guest_page = guest.new_page()
        guest_page.goto(link)
        guest_page.locator("[data-testid=order-shipped]").wait_for()
        walk.look("guest-status", guest_page)
        shipped_text = guest_page.text_content("[data-testid=order-shipped]")
        address = guest_page.inner_text("[data-testid=order-address] address")
        tampered = guest_page.goto(link[:-3] + ("AA/" if link[-3:-1] != "AA" else "BB/"))
        guest.close()

        # A staff member outside the group: no Refund button, and the refund page refuses.
        outsider = browser.browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}
        )
        outsider_page = outsider.new_page()
        admin_login(outsider_page, url, "nico")
        outsider_page.goto(f"{url}/admin/payments/order/{order.pk}/change/")
        outsider_order = outsider_page.content()
        refused = outsider_page.goto(f"{url}/admin/payments/order/{order.pk}/refund/")
        walk.look("no-right-to-refund", outsider_page)
        outsider.close()

        # A superuser: the event log's payload and the refunds to check.
        boss = browser.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        boss_page = boss.new_page()
        admin_login(boss_page, url, "boss")
        event = StripeEvent.objects.get()
        boss_page.goto(f"{url}/admin/payments/stripeevent/{event.pk}/change/")
        walk.look("event", boss_page)
        boss_page.goto(f"{url}/admin/payments/refund/?attention=yes")
        walk.look("refunds-to-check", boss_page)
        boss.close()

    assert missing.status == 404 and tampered.status == 404
    assert "1Z999AA10123456784" in shipped_text and "UPS" in shipped_text
    assert address.splitlines()[-2:] == ["San Francisco, CA 94105", "United States"]
    assert "Orders to ship" in home_text and "Sales, net of refunds" in home_text
    assert f"/admin/payments/order/{order.pk}/refund/" not in outsider_order
    assert refused.status == 403
    assert walk.too_wide() == {}
    shop_pages = ["grid", "product-without-image", "404", "guest-status", "no-right-to-refund"]
    assert {name: walk.axe[name] for name in [*shop_pages, "staff-home"] if walk.axe[name]} == {}
