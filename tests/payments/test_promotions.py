"""Promotion codes the shop makes are ones Stripe takes: letters, digits and dashes."""

from unittest import mock

import pytest

from payments import promotions, stripe_api


@pytest.mark.parametrize("code", ["WELCOME 10", "10%OFF", "café", "", "SUMMER_SALE", "A\n"])
def test_a_code_stripe_would_refuse_is_refused_before_stripe_is_asked(code):
    with (
        mock.patch("payments.stripe_api.client") as client,
        pytest.raises(ValueError, match="letters, digits and dashes"),
    ):
        stripe_api.promotion_code_create(code=code, coupon_id="co_1", idempotency_key="k")

    client.assert_not_called()


@pytest.mark.parametrize("code", [promotions.DEMO_CODE, "SPRING-2027", "a1"])
def test_letters_digits_and_dashes_are_sent(code):
    with mock.patch("payments.stripe_api.client") as client:
        stripe_api.promotion_code_create(code=code, coupon_id="co_1", idempotency_key="k")

    sent = client.return_value.v1.promotion_codes.create.call_args.kwargs["params"]
    assert sent["code"] == code
