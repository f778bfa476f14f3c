from django import template

from store.money import format_money

register = template.Library()


@register.filter
def money(amount: int | None, currency: str | None) -> str:
    """`{{ price.unit_amount|money:price.currency }}`"""
    return format_money(amount, currency)
