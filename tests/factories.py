from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from cart.models import Cart, CartItem
from payments.models import Order, OrderLine
from store.models import Price, Product, Reservation


def _with_price(product: Product, create: bool, extracted: object, **kwargs: object) -> None:
    """Every product gets an active USD price unless `with_price=False`."""
    if extracted is False or not create:
        return
    product.price = PriceFactory.create(product=product, **kwargs)
    product.default_price_stripe_id = product.price.stripe_id
    product.save(update_fields=["price", "default_price_stripe_id"])


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product
        skip_postgeneration_save = True

    stripe_id = factory.Sequence(lambda n: f"prod_test{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    description = "A fine thing."
    images = factory.LazyAttribute(lambda p: [f"/static/img/{p.stripe_id}.svg"])
    active = True
    stock = 10

    with_price = factory.post_generation(_with_price)


class PriceFactory(factory.django.DjangoModelFactory[Price]):
    class Meta:
        model = Price

    stripe_id = factory.Sequence(lambda n: f"price_test{n:05d}")
    product = factory.SubFactory(ProductFactory, with_price=False)
    unit_amount = 1500
    currency = "usd"
    active = True


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"shopper{n}@example.com")
    email = factory.LazyAttribute(lambda u: u.username)
    password = factory.django.Password("correct horse battery")


class ReservationFactory(factory.django.DjangoModelFactory[Reservation]):
    class Meta:
        model = Reservation

    product = factory.SubFactory(ProductFactory)
    quantity = 1
    holder = factory.Sequence(lambda n: f"test:{n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=30))


class CartFactory(factory.django.DjangoModelFactory[Cart]):
    class Meta:
        model = Cart

    session_key = factory.Sequence(lambda n: f"session{n:05d}")


class CartItemFactory(factory.django.DjangoModelFactory[CartItem]):
    class Meta:
        model = CartItem

    cart = factory.SubFactory(CartFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1


class OrderFactory(factory.django.DjangoModelFactory[Order]):
    """A pending goods order with no lines; see tests.support.orders for whole orders."""

    class Meta:
        model = Order

    user = None
    currency = "usd"
    email = factory.LazyAttribute(lambda o: getattr(o.user, "email", "") or "")
    stripe_session_id = factory.Sequence(lambda n: f"cs_test_order{n:05d}")
    reserved_until = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=30))


class OrderLineFactory(factory.django.DjangoModelFactory[OrderLine]):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    stripe_price_id = factory.LazyAttribute(lambda line: line.product.price.stripe_id)
    unit_amount = factory.LazyAttribute(lambda line: line.product.price.unit_amount)
    currency = factory.LazyAttribute(lambda line: line.product.price.currency)
