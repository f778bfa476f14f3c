"""seed_demo against the emulator over real HTTP: the SDK's real request path."""

import io

import pytest
from django.core.management import call_command

from payments import shipping
from store.demo.catalog import PRODUCTS
from store.models import Product
from tests.support.emulator import running_emulator

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


@pytest.fixture
def emulator(settings):
    with running_emulator() as emulator:
        settings.STRIPE_API_BASE = emulator.api_base
        settings.STRIPE_SECRET_KEY = emulator.api_key
        yield emulator


def test_seed_demo_creates_the_catalog_once_and_stocks_it(emulator, client):
    call_command("seed_demo", stdout=io.StringIO())
    in_stripe = list(emulator.client().v1.products.list(params={"limit": 100}).auto_paging_iter())
    out = io.StringIO()
    shipping.cache_clear()  # as a new process: the rates must be found at Stripe again

    call_command("seed_demo", stdout=out)

    assert "0 products created" in out.getvalue()
    assert "promotion code WELCOME10 already there" in out.getvalue()
    rates = emulator.client().v1.shipping_rates.list(params={"limit": 100}).data
    assert sorted((r.display_name, r.fixed_amount.amount) for r in rates) == [
        ("Express shipping (1-2 days)", 1500),
        ("Standard shipping (5-7 days)", 500),
    ]
    codes = emulator.client().v1.promotion_codes.list(params={"code": "WELCOME10"}).data
    assert len(codes) == 1 and codes[0].active
    assert len(in_stripe) == len(PRODUCTS) + 1  # the members' pass too
    again = list(emulator.client().v1.products.list(params={"limit": 100}).auto_paging_iter())
    assert len(again) == len(in_stripe)
    visible = Product.objects.visible()
    assert visible.count() == len(PRODUCTS)  # the pass is not on the grid
    teapot = visible.get(name="Ceramic Teapot")
    assert (teapot.stock, teapot.price.unit_amount, teapot.price.currency) == (12, 4800, "usd")
    assert teapot.image.endswith("/static/img/products/teapot.svg")
    html = client.get("/").content.decode()
    assert "Ceramic Teapot" in html and "$48.00" in html


def test_seed_demo_does_not_restock_a_product_that_sold_out(emulator):
    call_command("seed_demo", stdout=io.StringIO())
    Product.objects.filter(name="Ceramic Teapot").update(stock=3)

    call_command("seed_demo", stdout=io.StringIO())

    assert Product.objects.get(name="Ceramic Teapot").stock == 3
