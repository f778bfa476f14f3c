import pytest
from django.template import Context, Template
from django.utils import translation

from store.money import format_money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1234, "usd", "$12.34"),
        (5, "usd", "$0.05"),
        (1234, "EUR", "€12.34"),
        (1234, "gbp", "£12.34"),
        (123456789, "usd", "$1,234,567.89"),
        (1234, "jpy", "¥1,234"),
        (1000, "krw", "₩1,000"),
        (250, "chf", "CHF2.50"),
        (-1234, "usd", "-$12.34"),
        (None, "usd", ""),
        # Three-decimal currencies: the minor unit is a thousandth.
        (1234, "kwd", "KWD1.234"),
        (12345, "BHD", "BHD12.345"),
        # ISO gives ISK no decimals, but Stripe still counts it in hundredths.
        (500, "isk", "ISK5"),
    ],
)
def test_format_money(amount, currency, expected):
    assert format_money(amount, currency) == expected


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("xyz", "XYZ12.34"), ("XYZ", "XYZ12.34"), ("", "12.34"), (None, "12.34")],
)
def test_an_unknown_or_missing_currency_is_two_decimal_and_never_an_error(currency, expected):
    assert format_money(1234, currency) == expected


def test_the_active_language_decides_the_format():
    with translation.override("de"):
        german = format_money(123456, "eur")

    assert german == "1.234,56\xa0€"
    assert format_money(123456, "eur") == "€1,234.56"


def test_the_filter_formats_and_escapes_whatever_code_it_is_given():
    template = Template("{% load money %}{{ a|money:c }} {{ a|money:odd }}")

    html = template.render(Context({"a": 1234, "c": "jpy", "odd": "<b>"}))

    assert html == "¥1,234 &lt;B&gt;12.34"
