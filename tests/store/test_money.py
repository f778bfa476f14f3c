import pytest

from store.money import format_money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1234, "usd", "$12.34"),
        (5, "usd", "$0.05"),
        (1234, "EUR", "€12.34"),
        (1234, "jpy", "¥1234"),
        (1000, "krw", "₩1000"),
        (250, "chf", "2.50 CHF"),
        (-1234, "usd", "-$12.34"),
        (None, "usd", ""),
    ],
)
def test_format_money(amount, currency, expected):
    assert format_money(amount, currency) == expected
