from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from store.models import Price, Product


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        skip_postgeneration_save = True

    stripe_id = factory.Sequence(lambda n: f"prod_test{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    description = "A fine thing."
    images = factory.LazyAttribute(lambda p: [f"/static/img/{p.stripe_id}.svg"])
    active = True
    stock = 10

    @factory.post_generation
    def with_price(self, create: bool, extracted: object, **kwargs: object) -> None:
        """Every product gets an active USD price unless `with_price=False`."""
        if extracted is False or not create:
            return
        self.price = PriceFactory(product=self, **kwargs)
        self.default_price_stripe_id = self.price.stripe_id
        self.save(update_fields=["price", "default_price_stripe_id"])


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    stripe_id = factory.Sequence(lambda n: f"price_test{n:05d}")
    product = factory.SubFactory(ProductFactory, with_price=False)
    unit_amount = 1500
    currency = "usd"
    active = True


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"shopper{n}@example.com")
    email = factory.LazyAttribute(lambda u: u.username)
    password = factory.django.Password("correct horse battery")
