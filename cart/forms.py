"""Input from the cart's forms. Every rule a shopper can break is checked here, with a message."""

from __future__ import annotations

from typing import Any

from django import forms

from cart.models import MAX_LINE_QUANTITY, Cart
from store.models import Product


class OutOfStock(forms.ValidationError):
    """Not a malformed request but a conflict with the stock: the view answers 409."""


class _LineForm(forms.Form):
    product = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        error_messages={"required": "Choose a product.", "invalid": "Choose a product."},
    )
    quantity = forms.IntegerField(
        min_value=1,
        max_value=MAX_LINE_QUANTITY,
        error_messages={
            "required": "Enter a quantity.",
            "invalid": "The quantity must be a whole number.",
            "min_value": "The quantity must be at least 1.",
            "max_value": f"You can buy at most {MAX_LINE_QUANTITY} of one product.",
        },
    )

    def __init__(self, *args: Any, cart: Cart | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cart = cart
        self.product_obj: Product | None = None

    def clean_product(self) -> int:
        pk: int = self.cleaned_data["product"]
        product = Product.objects.visible().with_reserved().filter(pk=pk).first()
        if product is None:
            raise forms.ValidationError("That product is not for sale.", code="unknown_product")
        self.product_obj = product
        return pk

    def already_in_cart(self) -> int:
        return 0

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        product, quantity = self.product_obj, cleaned.get("quantity")
        if product is None or quantity is None:
            return cleaned
        wanted = self.already_in_cart() + int(quantity)
        available = product.available()
        if wanted > MAX_LINE_QUANTITY:
            raise forms.ValidationError(
                f"You can buy at most {MAX_LINE_QUANTITY} of one product.", code="too_many"
            )
        if wanted > available:
            message = (
                f"{product.name} is sold out."
                if available == 0
                else f"Only {available} of {product.name} available."
            )
            raise OutOfStock(message, code="out_of_stock")
        return cleaned

    def is_conflict(self) -> bool:
        """True when the only problem is the stock (409), not the request itself (400)."""
        return any(
            error.code == "out_of_stock" for error in self.errors.as_data().get("__all__", [])
        )

    def message(self) -> str:
        return " ".join(str(m) for errors in self.errors.values() for m in errors)


class CartAddForm(_LineForm):
    """Add `quantity` more of a product: the cart's line plus this must stay within limits."""

    def already_in_cart(self) -> int:
        if self.cart is None or self.product_obj is None:
            return 0
        item = self.cart.items.filter(product=self.product_obj).first()
        return item.quantity if item else 0


class CartUpdateForm(_LineForm):
    """Set a line's quantity. A product no longer for sale may still be removed, not changed."""

    def clean_product(self) -> int:
        pk = super().clean_product()
        if self.cart is None or not self.cart.items.filter(product_id=pk).exists():
            raise forms.ValidationError("That product is not in your cart.", code="not_in_cart")
        return pk


class CartRemoveForm(forms.Form):
    product = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        error_messages={"required": "Choose a product.", "invalid": "Choose a product."},
    )

    def message(self) -> str:
        return " ".join(str(m) for errors in self.errors.values() for m in errors)
