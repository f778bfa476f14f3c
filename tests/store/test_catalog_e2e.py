"""The catalog kept current by the emulator's signed webhooks, over real HTTP."""

import pytest

from store.models import Product
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.emulator]


@pytest.fixture(params=[False, True], ids=["in-order", "chaos"])
def emulator(request, emulated_stripe):
    with emulated_stripe(chaos=request.param) as emulator:
        yield emulator


def test_changes_made_in_stripe_reach_the_grid(emulator, client):
    stripe = emulator.client()
    product = stripe.v1.products.create(params={"name": "Teapot"})
    price = stripe.v1.prices.create(
        params={"product": product.id, "unit_amount": 4800, "currency": "usd"}
    )
    for name in ["Teapot v2", "Teapot v3", "Teapot v4"]:
        stripe.v1.products.update(product.id, params={"name": name})
    stripe.v1.products.update(product.id, params={"default_price": price.id})

    emulator.flush()

    teapot = wait_until(lambda: Product.objects.visible().filter(stripe_id=product.id).first())
    assert (teapot.name, teapot.price.unit_amount) == ("Teapot v4", 4800)
    assert b"Teapot v4" in client.get("/").content

    stripe.v1.products.update(product.id, params={"active": False})
    emulator.flush()

    wait_until(lambda: not Product.objects.visible().filter(stripe_id=product.id).exists())
    assert b"Teapot" not in client.get("/").content
