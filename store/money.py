"""Money is an integer amount in the currency's minor unit plus an ISO code, everywhere.

This is the one place that turns it into text for people.
"""

from __future__ import annotations

# Stripe's zero-decimal currencies: the amount is already in whole units.
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cny": "¥", "inr": "₹", "krw": "₩"}


def format_money(amount: int | None, currency: str) -> str:
    """`format_money(1234, "usd")` -> "$12.34"; `format_money(1234, "jpy")` -> "¥1234"."""
    if amount is None:
        return ""
    code = (currency or "").lower()
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    number = str(amount) if code in ZERO_DECIMAL else f"{amount // 100}.{amount % 100:02d}"
    symbol = SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {code.upper()}"
