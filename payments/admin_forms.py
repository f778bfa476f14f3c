"""The admin's staff actions on an order: mark shipped, refund."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from payments.models import Order, OrderLine
from payments.refunds import LineRefund, lines_refunded
from store.money import minor_unit_digits


class ShipForm(forms.Form):
    carrier = forms.CharField(max_length=64)
    tracking_number = forms.CharField(max_length=128)


class RefundForm(forms.Form):
    """An amount (in major units, e.g. 12.50), or quantities of lines, or both.

    `request_token` is made when the form is first shown and travels with it: submitting
    the same form twice (a double click, a retry after a timeout) is the same request, so
    the same single refund.
    """

    request_token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    everything = forms.BooleanField(
        required=False,
        label="Refund everything left (shipping included)",
        help_text="Or give an amount, or the quantities of lines, below.",
    )
    amount = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), decimal_places=3, label="Amount"
    )
    restock = forms.BooleanField(
        required=False, label="Put the refunded lines' stock back", initial=True
    )
    reason = forms.CharField(required=False, max_length=255)

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        if not self.is_bound:
            self.initial["request_token"] = uuid.uuid4().hex
        already = lines_refunded(order)
        self.line_fields: list[tuple[str, OrderLine]] = []
        for line in order.lines.select_related("product"):
            left = line.quantity - already.get(line.pk, 0)
            name = f"line_{line.pk}"
            # Bounded by what was ordered only: what is left is checked by the refund itself,
            # under the order's lock and after this form's token (a form sent again after its
            # refund was made must get that refund back, not "nothing left").
            self.fields[name] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=line.quantity,
                initial=0,
                label=f"{line.product} ({left} of {line.quantity} refundable)",
            )
            self.line_fields.append((name, line))

    def clean_amount(self) -> int | None:
        value = self.cleaned_data.get("amount")
        if value is None:
            return None
        digits = minor_unit_digits(self.order.currency.upper())
        try:
            minor = value.scaleb(digits)
        except InvalidOperation as exc:  # pragma: no cover - DecimalField bounds it
            raise forms.ValidationError("Not an amount.") from exc
        if minor != minor.to_integral_value():
            raise forms.ValidationError(f"At most {digits} decimals in {self.order.currency}.")
        return int(minor)

    def lines(self) -> list[LineRefund]:
        return [
            LineRefund(line_id=line.pk, quantity=self.cleaned_data.get(name) or 0)
            for name, line in self.line_fields
            if self.cleaned_data.get(name)
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (
            not self.errors
            and not cleaned.get("everything")
            and not cleaned.get("amount")
            and not self.lines()
        ):
            raise forms.ValidationError(
                "Tick 'everything', or enter an amount or the quantities of lines to refund."
            )
        return cleaned
