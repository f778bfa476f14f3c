"""A postal address as that country writes it, ending with the country's name.

Stripe hands addresses over as fields (line1, line2, city, postal_code, state, country);
printed as they come they read "94105 San Francisco / CA / US", and "CA" is California on
one order and Canada on the next. Each country's convention (the Universal Postal Union's,
for the countries the shop ships to) puts the town, region and postcode on their line, and
the last line names the country in the reader's language (CLDR's names, through babel).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from django.utils import translation

# The town line, by country: {city}, {state} and {postal} are the fields (empty ones and
# the spaces around them drop out). A country not listed uses DEFAULT.
TOWN_LINES: dict[str, tuple[str, ...]] = {
    "US": ("{city}, {state} {postal}",),
    "CA": ("{city} {state} {postal}",),
    "AU": ("{city} {state} {postal}",),
    "GB": ("{city}", "{postal}"),
    "IE": ("{city}", "{state}", "{postal}"),
    "IT": ("{postal} {city} {state}",),
    "ES": ("{postal} {city}", "{state}"),
    "JP": ("{postal}", "{state} {city}"),
}
DEFAULT = ("{postal} {city}", "{state}")  # most of Europe: "75001 Paris", "10115 Berlin"


@dataclass(frozen=True)
class Address:
    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    postal_code: str = ""
    state: str = ""
    country: str = ""  # ISO 3166-1 alpha-2


@lru_cache(maxsize=16)
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(translation.to_locale(language))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


def country_name(code: str) -> str:
    """`code`'s name in the active language ("Canada", "United States"); the code itself
    if CLDR does not know it."""
    code = code.upper()
    names = _locale(translation.get_language() or "en").territories
    return str(names.get(code, code))


def _town_line(template: str, address: Address) -> str:
    filled = template.format(city=address.city, state=address.state, postal=address.postal_code)
    return " ".join(filled.split()).replace(" ,", ",").strip(", ")


def address_lines(address: Address) -> list[str]:
    """The address, one printed line each (empty if it has no street)."""
    if not address.line1:
        return []
    code = address.country.upper()
    town = [_town_line(t, address) for t in TOWN_LINES.get(code, DEFAULT)]
    lines = [address.name, address.line1, address.line2, *town]
    if code:
        lines.append(country_name(code))
    return [line for line in lines if line]
