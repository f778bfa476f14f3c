"""The shop on a 375 px phone, in headless Chromium: every page of the accessibility walk
(tests/test_accessibility.py) fits the screen with no horizontal scroll and passes axe-core,
the grid has two columns, the cart stacks its lines and the header stays on one line.
Add-to-cart answers beside the button pressed, errors included. Screenshots of every page:
test-artifacts/phone/.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from cart.models import CartItem
from store import live
from store.models import Product
from tests.factories import ProductFactory
from tests.support.browser import chromium_page
from tests.test_accessibility import (
    PAGES,
    axe_violations,
    emulator,  # noqa: F401  (the fixture)
    hosted_checkout_url,
    walk_the_shop,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PHONE = (375, 812)

LAYOUT = """() => {
  const wide = [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .filter((el) => !el.closest('.sr-only, .skip-link'))
    .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
         + (typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : ''));
  const nav = document.querySelector('nav[aria-label=Main]');
  const columns = (selector) => {
    const el = document.querySelector(selector);
    if (!el) return 0;
    return new Set([...el.children].map((c) => Math.round(c.getBoundingClientRect().left))).size;
  };
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    wide: wide.slice(0, 5),
    navHeight: nav ? Math.round(nav.getBoundingClientRect().height) : null,
    navLines: nav ? [...nav.querySelectorAll('a, button')]
      .filter((el) => el.getClientRects().length > 1).map((el) => el.textContent.trim()) : [],
    gridColumns: columns('#product-grid'),
    cartColumns: columns('[data-testid=cart-line] > div:last-child'),
  };
}"""


@pytest.mark.emulator
def test_every_page_fits_a_phone(live_server, emulator):  # noqa: F811
    layout, violations = {}, {}

    with chromium_page(artifacts="phone", viewport=PHONE) as browser:

        def visit(name: str) -> None:
            browser.shot(name)
            layout[name] = browser.page.evaluate(LAYOUT)
            violations[name] = axe_violations(browser.page)

        seen = walk_the_shop(browser, url=live_server.url, emulator=emulator, visit=visit)

    assert seen == PAGES
    too_wide = {
        name: facts
        for name, facts in layout.items()
        if facts["scrollWidth"] > facts["innerWidth"] or facts["wide"]
    }
    assert too_wide == {}
    assert {name: facts["navLines"] for name, facts in layout.items() if facts["navLines"]} == {}
    assert max(facts["navHeight"] for name, facts in layout.items() if name != "checkout") <= 56
    assert layout["grid"]["gridColumns"] == 2
    assert layout["cart"]["cartColumns"] == 1  # name, steps and total stacked
    assert {name: v for name, v in violations.items() if v} == {}


@pytest.mark.emulator
def test_the_emulators_checkout_page_fits_a_phone(live_server, emulator):  # noqa: F811
    with chromium_page(viewport=PHONE) as browser:
        browser.page.goto(hosted_checkout_url(emulator))
        browser.page.get_by_text("Pay with card").wait_for()
        facts = browser.page.evaluate(LAYOUT)

    assert facts["scrollWidth"] <= facts["innerWidth"]


def test_twelve_products_scroll_half_as_far_as_one_column(live_server):
    for n in range(12):
        ProductFactory(name=f"Product {n}", images=["/static/img/products/kettle.svg"])

    with chromium_page(viewport=PHONE) as browser:
        browser.page.goto(f"{live_server.url}/")
        height = browser.page.evaluate("document.documentElement.scrollHeight")

    # One column of 375 px cards took 6,600 px (issue 11); two columns, about half.
    assert height < 3800


def test_add_to_cart_answers_beside_the_button_pressed(live_server):
    lamp = ProductFactory(name="Lamp", stock=1)
    ProductFactory(name="Rug", stock=5)

    with chromium_page(viewport=PHONE) as browser:
        page = browser.page
        page.goto(f"{live_server.url}/")
        card = page.locator(f"#product-{lamp.pk}")
        card.locator("[data-testid=add-to-cart]").click()
        feedback = card.locator("[data-testid=add-feedback]")
        feedback.get_by_text("Added Lamp to your cart.").wait_for()
        card.locator("[data-testid=add-to-cart]").click()
        refusal = feedback.get_by_text("Only 1 of Lamp available.")
        refusal.wait_for()
        button = card.locator("[data-testid=add-to-cart]").bounding_box()
        message = refusal.bounding_box()
        top_messages = page.locator("#messages [role=alert]").count()
        other_feedback = page.locator("[data-testid=add-feedback] [role=alert]").count()
        count = page.text_content("#cart-count")

    assert 0 <= message["y"] - (button["y"] + button["height"]) < 40  # just below it
    assert message["y"] + message["height"] < PHONE[1] * 2  # on screen without scrolling far
    assert top_messages == 0
    assert other_feedback == 1  # the earlier "Added" was replaced, only in this card
    assert count.strip() == "1"
    assert CartItem.objects.get().quantity == 1


@pytest.mark.parametrize("viewport", [(1280, 900), PHONE], ids=["1280", "375"])
def test_cards_keep_their_height_and_the_answer_leads_to_the_cart(live_server, viewport):
    products = [ProductFactory(name=f"Mug {n}", stock=5) for n in range(6)]

    with chromium_page(viewport=viewport) as browser:
        page = browser.page
        page.goto(f"{live_server.url}/")
        card = page.locator(f"#product-{products[0].pk}")
        neighbour = page.locator(f"#product-{products[1].pk}")
        below = page.locator(f"#product-{products[4].pk}")
        before = [card.bounding_box()["height"], below.bounding_box()["y"]]
        card.locator("[data-testid=add-to-cart]").click()
        card.locator("[data-testid=view-cart]").wait_for()
        after = [card.bounding_box()["height"], below.bounding_box()["y"]]
        neighbour_height = neighbour.bounding_box()["height"]
        card.locator("[data-testid=view-cart]").click()
        page.wait_for_url(f"{live_server.url}/cart/")

    assert after == before  # neither the card nor the row below moved
    assert neighbour_height == before[0]


def test_product_page_quantity_picker_adds_that_many(live_server):
    kettle = ProductFactory(name="Kettle", stock=4)

    with chromium_page(viewport=PHONE) as browser:
        page = browser.page
        page.goto(f"{live_server.url}/products/{kettle.pk}/")
        maximum = page.get_attribute("[data-testid=quantity]", "max")
        page.fill("[data-testid=quantity]", "3")
        page.click("[data-testid=add-to-cart]")
        page.locator("[data-testid=add-feedback]").get_by_text("Added Kettle").wait_for()
        page.fill("[data-testid=quantity]", "2")
        page.click("[data-testid=add-to-cart]")
        page.locator("[data-testid=add-feedback]").get_by_text("Only 4 of Kettle").wait_for()

    assert maximum == "4"
    assert CartItem.objects.get().quantity == 3


def test_cart_steps_work_without_javascript_and_archived_lines_do_not_link(live_server):
    kettle = ProductFactory(name="Kettle", stock=3)
    mug = ProductFactory(name="Mug", stock=3)
    with chromium_page(viewport=PHONE) as browser:
        browser.context.close()
        context = browser.browser.new_context(
            java_script_enabled=False, viewport={"width": PHONE[0], "height": PHONE[1]}
        )
        page = context.new_page()
        for product in (kettle, mug):
            page.goto(f"{live_server.url}/products/{product.pk}/")
            page.click("[data-testid=add-to-cart]")
            page.wait_for_url(f"{live_server.url}/cart/")
        line = page.locator(f"[data-product='{kettle.pk}']")
        line.locator("[data-testid=quantity-up]").click()
        line.locator("[data-testid=quantity-up]").click()
        after_up = page.input_value(f"#qty-{kettle.pk}")
        up_disabled = line.locator("[data-testid=quantity-up]").is_disabled()
        line.locator("[data-testid=quantity-down]").click()
        after_down = page.input_value(f"#qty-{kettle.pk}")
        Product.objects.filter(pk=mug.pk).update(active=False)
        page.reload()
        archived = page.locator(f"[data-product='{mug.pk}']")
        links = archived.locator("a").count()
        label = archived.locator("[data-testid=not-for-sale]").text_content()
        steps = archived.locator("[data-testid=quantity-up]").count()
        context.close()

    assert (after_up, up_disabled, after_down) == ("3", True, "2")
    assert (links, label, steps) == (0, "Mug", 0)
    assert CartItem.objects.get(product=kettle).quantity == 2


def test_the_quantity_picker_follows_live_stock(live_server):
    expect = pytest.importorskip("playwright.sync_api").expect
    kettle = ProductFactory(name="Kettle", stock=9)

    with chromium_page(viewport=PHONE) as browser:
        page = browser.page
        page.goto(f"{live_server.url}/products/{kettle.pk}/")
        expect(page.locator("[data-live-state=open]")).to_have_count(1)
        page.fill("[data-testid=quantity]", "2")
        with transaction.atomic():
            Product.objects.filter(pk=kettle.pk).update(stock=3)
            live.publish_on_commit([kettle.pk])
        expect(page.locator(".stock")).to_have_attribute("data-available", "3")
        expect(page.locator("[data-testid=quantity]")).to_have_attribute("max", "3")
        kept = page.input_value("[data-testid=quantity]")
        with transaction.atomic():
            Product.objects.filter(pk=kettle.pk).update(stock=0)
            live.publish_on_commit([kettle.pk])
        expect(page.locator("[data-testid=add-to-cart]")).to_be_disabled()
        expect(page.locator("[data-testid=quantity]")).to_be_disabled()
        label = page.text_content("[data-testid=add-to-cart]")

    assert kept == "2"
    assert label == "Sold out"
