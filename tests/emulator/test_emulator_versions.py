"""API versions: the emulator answers in the version a request pins and refuses others."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import stripe

from payments import stripe_api
from stripe_emulator import API_VERSION
from stripe_emulator.schema import KNOWN_API_VERSIONS
from tests.support.emulator import Emulator


def raw_get(emulator: Emulator, version: str | None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(emulator.api_base + "/v1/products")
    request.add_header("Authorization", f"Bearer {emulator.api_key}")
    if version is not None:
        request.add_header("Stripe-Version", version)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_sdks_own_version_is_pinned_and_echoed(emulator: Emulator) -> None:
    client = emulator.client()  # no stripe_version: the SDK sends stripe.api_version

    products = client.v1.products.list()

    assert products.last_response.headers["Stripe-Version"] == stripe.api_version
    assert stripe.api_version in KNOWN_API_VERSIONS


def test_no_version_gets_the_accounts_default(emulator: Emulator) -> None:
    status, headers, _ = raw_get(emulator, None)

    assert status == 200
    assert headers["Stripe-Version"] == API_VERSION


def test_an_unknown_version_is_refused_as_stripe_does(emulator: Emulator) -> None:
    client = stripe.StripeClient(
        emulator.api_key,
        base_addresses={"api": emulator.api_base},
        stripe_version="2099-01-01.nonesuch",
    )

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.products.list()

    assert excinfo.value.http_status == 400
    assert excinfo.value.user_message == "Invalid Stripe API version: 2099-01-01.nonesuch"
    assert excinfo.value.error is not None
    assert excinfo.value.error.type == "invalid_request_error"
    status, _, _ = raw_get(emulator, "2019-2-19")
    assert status == 400


def test_the_app_pins_a_version_the_emulator_knows(emulator: Emulator, settings) -> None:
    settings.STRIPE_API_BASE = emulator.api_base
    settings.STRIPE_SECRET_KEY = emulator.api_key

    products = stripe_api.client().v1.products.list()

    assert stripe_api.STRIPE_API_VERSION in KNOWN_API_VERSIONS
    assert products.last_response is not None
    assert products.last_response.headers["Stripe-Version"] == stripe_api.STRIPE_API_VERSION
