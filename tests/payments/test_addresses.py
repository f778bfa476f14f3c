"""Addresses as each country writes them, ending with the country's name: "CA" after a
US town is California, and Canada is spelled out."""

from __future__ import annotations

import pytest
from django.utils import translation

from payments.addresses import Address, address_lines, country_name


@pytest.mark.parametrize(
    ("fields", "printed"),
    [
        (
            {"city": "San Francisco", "state": "CA", "postal_code": "94105", "country": "US"},
            ["San Francisco, CA 94105", "United States"],
        ),
        (
            {"city": "Montréal", "state": "QC", "postal_code": "H3Z 2Y7", "country": "CA"},
            ["Montréal QC H3Z 2Y7", "Canada"],
        ),
        (
            {"city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
            ["London", "SW1Y 4JH", "United Kingdom"],
        ),
        ({"city": "Paris", "postal_code": "75001", "country": "FR"}, ["75001 Paris", "France"]),
        (
            {"city": "Roma", "state": "RM", "postal_code": "00184", "country": "IT"},
            ["00184 Roma RM", "Italy"],
        ),
        (
            {"city": "Dublin", "state": "Co. Dublin", "postal_code": "D02 X285", "country": "IE"},
            ["Dublin", "Co. Dublin", "D02 X285", "Ireland"],
        ),
        ({"city": "Oslo", "postal_code": "0150", "country": "NO"}, ["0150 Oslo", "Norway"]),
        ({"city": "Springfield", "country": "US"}, ["Springfield", "United States"]),
    ],
)
def test_an_address_is_printed_as_its_country_writes_it(fields, printed):
    address = Address(name="Ada Lovelace", line1="1 Main Street", line2="", **fields)

    assert address_lines(address) == ["Ada Lovelace", "1 Main Street", *printed]


def test_no_street_no_address():
    assert address_lines(Address(city="Paris", country="FR")) == []


def test_country_names_follow_the_language_and_unknown_codes_stay():
    with translation.override("fr"):
        french = country_name("de")

    assert (french, country_name("DE"), country_name("QQ")) == ("Allemagne", "Germany", "QQ")
