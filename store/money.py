"""Money is an integer amount in the currency's minor unit plus an ISO code, everywhere.

This is the one place that turns it into text for people: babel (CLDR) knows every ISO
currency's symbol, digits and the active locale's grouping, so JPY, KWD and CHF come out
as they should without a table of ours.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision
from django.conf import settings
from django.utils import translation

# Stripe's zero-decimal currencies: the amount is already in whole units. Every other
# currency is two-decimal in Stripe's API (three for BHD, JOD, KWD, OMR, TND), even where
# ISO now has none (ISK, for one, is still sent in hundredths): so only this list may
# lower babel's digits, never babel alone.
STRIPE_ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
FALLBACK_LOCALE = "en_US"


@lru_cache(maxsize=256)
def minor_unit_digits(code: str) -> int:
    """Digits after the point in a Stripe amount of `code` (upper case); 2 if unknown."""
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    return max(get_currency_precision(code), 2)


@lru_cache(maxsize=32)
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(translation.to_locale(language))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(FALLBACK_LOCALE)


# The grid formats the same few prices on every render: babel costs ~9 µs a call, a hit
# here well under one.
@lru_cache(maxsize=4096)
def _format(amount: int, code: str, language: str) -> str:
    major = Decimal(amount).scaleb(-minor_unit_digits(code))
    return format_currency(major, code, locale=_locale(language))


def format_money(amount: int | None, currency: str | None) -> str:
    """`format_money(1234, "usd")` -> "$12.34"; `format_money(1234, "jpy")` -> "¥1,234".

    In the active language (en-us unless something activates another). Any currency code
    formats, known or not; an unknown one is taken as two-decimal and shown by its code.
    """
    if amount is None:
        return ""
    language = translation.get_language() or settings.LANGUAGE_CODE
    return _format(int(amount), (currency or "").upper(), language)
