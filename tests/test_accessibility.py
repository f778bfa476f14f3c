"""Every page the shop serves, in headless Chromium, checked with axe-core (no violation of
any impact) and walked with the Tab key (every interactive element shows a focus
outline that no ancestor clips). The same walk, at 375 px, is tests/test_phone.py.

axe-core is vendored in tests/support/vendor/ (`npm run vendor`): the tests need no npm.
Screenshots of every page at 1280 px: test-artifacts/desktop/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Entitlement
from payments.models import Order
from store.models import Product
from tests.factories import ProductFactory, UserFactory
from tests.support.browser import BrowserPage, chromium_page, fill_shipping_address
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.emulator]

AXE = Path(__file__).resolve().parent / "support" / "vendor" / "axe.min.js"
IMAGES = ["apron", "board", "bowl", "espresso-cups", "jars", "kettle", "knife", "planter"]
PASSWORD = "correct horse battery"
# Every finding fails, whatever its impact: a "minor" one is still a barrier to someone.
IMPACTS = ("minor", "moderate", "serious", "critical")

# Every page a shopper can reach, in the order the walk visits them; "checkout" is the
# emulator's hosted Checkout page: axe holds it to every impact too (its content is in a
# <main> landmark now), the focus walk and the skip link are for the shop's own pages.
PAGES = [
    "signup",
    "login",
    "grid",
    "product",
    "cart",
    "checkout",
    "success",
    "orders",
    "order",
    "dashboard",
]
OUR_PAGES = [name for name in PAGES if name != "checkout"]


@pytest.fixture
def emulator(emulated_stripe):
    with emulated_stripe() as emulator:
        yield emulator


def seed_in_stripe(emulator, *, name: str, stock: int) -> Product:
    """A product that can be paid for on the emulator's Checkout page."""
    stripe = emulator.client()
    product = stripe.v1.products.create(
        params={
            "name": name,
            "description": "Cast iron, enamelled inside. Holds a litre and a half.",
            "images": ["/static/img/products/teapot.svg"],
        }
    )
    price = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": 4800, "currency": "usd"}
    )
    stripe.v1.products.update(product.id, params={"default_price": price.id})
    local = wait_until(
        lambda: Product.objects.visible().filter(stripe_id=product.id).first(), timeout=15
    )
    Product.objects.filter(pk=local.pk).update(stock=stock)
    return local


def seed_catalog(emulator) -> dict[str, Product]:
    """Thirteen products: one to buy (low stock), one that will be archived while in the
    cart, one sold out, one without a picture, and filler with long names and descriptions."""
    teapot = seed_in_stripe(emulator, name="Cast iron teapot", stock=4)
    old = ProductFactory.create(name="Stoneware mug", images=["/static/img/products/bowl.svg"])
    ProductFactory(name="Sold-out skillet", stock=0, images=["/static/img/products/skillet.svg"])
    ProductFactory(name="Plain wooden spoon", stock=7, images=[])  # no picture, as Stripe allows
    for n in range(9):
        ProductFactory(
            name=f"Handmade kitchen thing with a rather long name {n}",
            description="Made by hand in small batches; every one is a little different. " * 3,
            stock=3 + n * 7,
            images=[f"/static/img/products/{IMAGES[n % len(IMAGES)]}.svg"],
        )
    return {"teapot": teapot, "old": old}


def walk_the_shop(
    browser: BrowserPage, *, url: str, emulator: Any, visit: Callable[[str], None]
) -> list[str]:
    """Sign up page, log in, the grid, a product page, a cart with an archived line, the
    emulator's Checkout, success, the orders and one order, the members' area: `visit(name)`
    runs on each page once it has loaded. Returns the names in the order visited."""
    products = seed_catalog(emulator)
    teapot, old = products["teapot"], products["old"]
    user = UserFactory.create(username="kim@example.com", email="kim@example.com")
    user.set_password(PASSWORD)
    user.save()
    page, seen = browser.page, []

    def at(name: str) -> None:
        page.wait_for_load_state("load")
        seen.append(name)
        visit(name)

    page.goto(f"{url}/accounts/signup/")
    at("signup")
    page.goto(f"{url}/accounts/login/")
    at("login")
    page.fill("input[name=username]", "kim@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-testid=login-form] button")
    page.wait_for_url(f"{url}/")

    page.click(f"#product-{old.pk} [data-testid=add-to-cart]")
    card = page.locator(f"#product-{old.pk}")
    card.locator("[data-testid=add-feedback]").get_by_text("Added Stoneware mug").wait_for()
    at("grid")

    page.goto(f"{url}/products/{teapot.pk}/")
    page.fill("[data-testid=quantity]", "2")
    page.click("[data-testid=add-to-cart]")
    page.locator("[data-testid=add-feedback]").get_by_text("Added Cast iron teapot").wait_for()
    at("product")

    Product.objects.filter(pk=old.pk).update(active=False)  # archived while in the cart
    page.goto(f"{url}/cart/")
    page.locator(f"[data-product='{teapot.pk}'] [data-testid=quantity-up]").click()
    page.wait_for_url(f"{url}/cart/")
    page.get_by_text("Updated Cast iron teapot in your cart.").wait_for()
    at("cart")
    page.locator(f"[data-product='{old.pk}'] [data-testid=remove]").click()
    page.get_by_text("Removed from your cart.").wait_for()

    page.click("[data-testid=checkout]")
    page.wait_for_url(re.compile(re.escape(emulator.api_base) + r"/pay/cs_"))
    page.get_by_text("Pay with card").wait_for()
    at("checkout")
    page.fill("#email", "kim@example.com")
    page.fill("#card", "4242 4242 4242 4242")
    page.fill("#expiry", "12 / 34")
    page.fill("#cvc", "123")
    fill_shipping_address(page)
    page.click("button:has-text('Pay')")
    page.wait_for_url(re.compile(re.escape(url) + r"/checkout/success/"))
    at("success")

    page.click("[data-testid=orders-link]")
    page.wait_for_url(f"{url}/orders/")
    at("orders")
    page.click("[data-testid=orders] a")
    page.wait_for_url(re.compile(re.escape(url) + r"/orders/\d+/"))
    at("order")

    Entitlement.objects.create(user=user, order=None)
    page.goto(f"{url}/dashboard/")
    page.locator("[data-testid=dashboard]").wait_for()
    at("dashboard")

    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert [(line.product_id, line.quantity) for line in order.lines.all()] == [(teapot.pk, 3)]
    return seen


def axe_violations(page: Any, impacts: tuple[str, ...] = IMPACTS) -> list[str]:
    """axe-core's violations of the given impacts on this page (all of them unless told),
    one line per element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {' '.join(node['target'])}"
        f" -- {node.get('failureSummary', '')}"
        for violation in results["violations"]
        if violation["impact"] in impacts
        for node in violation["nodes"]
    ]


FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const describe = (node) => node.tagName.toLowerCase()
    + (node.id ? '#' + node.id : '')
    + (node.dataset && node.dataset.testid ? `[data-testid=${node.dataset.testid}]` : '')
    + ' "' + (node.innerText || node.value || node.getAttribute('aria-label') || '')
      .trim().slice(0, 40) + '"';
  const style = getComputedStyle(el);
  const width = parseFloat(style.outlineWidth) || 0;
  const outline = style.outlineStyle !== 'none' && width > 0;
  let clippedBy = null;
  if (outline) {
    const grow = width + (parseFloat(style.outlineOffset) || 0);
    const r = el.getBoundingClientRect();
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
      const b = a.getBoundingClientRect();
      if (r.left - grow < b.left - 0.5 || r.right + grow > b.right + 0.5
          || r.top - grow < b.top - 0.5 || r.bottom + grow > b.bottom + 0.5) {
        clippedBy = describe(a);
        break;
      }
    }
  }
  window.focusKeys = window.focusKeys || new WeakMap();
  if (!window.focusKeys.has(el)) {
    window.focusKeys.set(el, (window.focusCount = (window.focusCount || 0) + 1));
  }
  return {key: window.focusKeys.get(el), label: describe(el), outline, clippedBy};
}"""


def focus_problems(page: Any, *, limit: int = 200) -> tuple[list[str], int]:
    """Tab through the whole page, round to where it started; every element reached needs
    an unclipped outline. Returns the problems and how many elements were reached."""
    problems, seen, idle = [], set(), 0
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        if state is None:  # past the last element, before focus wraps to the first
            idle += 1
            if idle > 3:
                break
            continue
        if state["key"] in seen:
            break
        seen.add(state["key"])
        if not state["outline"]:
            problems.append(f"{state['label']}: no focus outline")
        elif state["clippedBy"]:
            problems.append(f"{state['label']}: focus outline clipped by {state['clippedBy']}")
    return problems, len(seen)


def skip_link_target(page: Any) -> tuple[str, str, int]:
    """The first focusable element's text, its width once focused (it is hidden until then),
    and the id of what has focus after pressing Enter on it."""
    first = page.locator("a[href], button, input:not([type=hidden]), select, textarea").first
    first.focus()
    width = first.evaluate("el => Math.round(el.getBoundingClientRect().width)")
    page.keyboard.press("Enter")
    return first.text_content().strip(), page.evaluate("document.activeElement.id"), width


def test_every_page_passes_axe_and_shows_focus(live_server, emulator) -> None:
    violations: dict[str, list[str]] = {}
    focus: dict[str, list[str]] = {}
    reached: dict[str, int] = {}
    skip_link: dict[str, tuple[str, str, int]] = {}

    with chromium_page(artifacts="desktop", viewport=(1280, 900)) as browser:
        page = browser.page

        def visit(name: str) -> None:
            browser.shot(name)
            violations[name] = axe_violations(page)
            if name in OUR_PAGES:
                skip_link[name] = skip_link_target(page)
                focus[name], reached[name] = focus_problems(page)

        seen = walk_the_shop(browser, url=live_server.url, emulator=emulator, visit=visit)

    assert seen == PAGES
    assert list(violations) == PAGES
    assert {name: v for name, v in violations.items() if v} == {}
    assert {name: p for name, p in focus.items() if p} == {}
    assert all(count >= 5 for count in reached.values()), reached
    assert {(text, target) for text, target, _ in skip_link.values()} == {
        ("Skip to main content", "main")
    }
    assert min(width for _, _, width in skip_link.values()) > 100


def hosted_checkout_url(emulator) -> str:
    """A Checkout Session for one teapot, created straight at the emulator."""
    stripe = emulator.client()
    product = stripe.v1.products.create(params={"name": "Teapot"})
    price = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": 4800, "currency": "usd"}
    )
    session = stripe.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": "http://localhost/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost/cancel",
        }
    )
    return session.url


def test_the_emulators_checkout_page_passes_axe(live_server, emulator):
    with chromium_page(viewport=(1280, 900)) as browser:
        browser.page.goto(hosted_checkout_url(emulator))
        browser.page.get_by_text("Pay with card").wait_for()
        # Stripe's page, played by the emulator, held to every impact as the shop's own are:
        # its content is in a <main> landmark (stripe_emulator/pages/__init__.py).
        violations = axe_violations(browser.page)

    assert violations == []
