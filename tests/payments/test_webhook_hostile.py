"""Hostile and random webhook bodies: always a clean 4xx or a recorded result, never a crash.

Every body here is signed with the real secret, so it passes the signature check and reaches
the parser and the handlers: what an attacker holding a leaked secret (or a buggy proxy)
could send.
"""

import copy
import itertools
import json
import time
from http import HTTPStatus
from typing import Any

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import stripe_api, webhook_verify
from payments.models import StripeEvent
from store.models import Product
from tests.support.stripe_events import event, price, product, sign

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


def test_a_signature_timestamped_in_the_future_is_rejected(webhook):
    payload = event("product.created", product("prod_future"))

    response = webhook.post(payload, timestamp=int(time.time()) + 86_400)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Product.objects.filter(stripe_id="prod_future").exists()


@pytest.mark.parametrize(
    "created",
    [2**63, 2**62, -1, int(time.time()) + 86_400],
    ids=["overflows-bigint", "freezes-the-product", "negative", "tomorrow"],
)
def test_an_event_created_out_of_range_is_rejected(webhook, created):
    payload = event("product.created", product("prod_frozen"), created=created)

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not StripeEvent.objects.exists()


def test_absurd_nesting_is_rejected_cheaply(webhook):
    body = b'{"id": "evt_deep", "type": "product.created", "data": ' + b"[" * 100_000
    body += b"]" * 100_000 + b"}"

    response = webhook.post(body)

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_moderate_nesting_past_the_limit_is_rejected(webhook) -> None:
    deep: Any = "x"
    for _ in range(webhook_verify.MAX_EVENT_DEPTH + 1):
        deep = {"a": deep}
    payload = event("product.created", product("prod_deep", metadata=deep))

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_an_integer_out_of_range_anywhere_is_rejected(webhook):
    payload = event("price.created", price("price_huge", "prod_huge", unit_amount=2**64))

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not StripeEvent.objects.exists()


# -- property-based: random and mutated events ---------------------------------------------

EVENT_TYPES = [
    "product.created",
    "product.updated",
    "product.deleted",
    "price.created",
    "price.updated",
    "price.deleted",
    "checkout.session.completed",
    "checkout.session.expired",
    "charge.refunded",
    "customer.created",
    "made.up",
]
# Integers at the edges of what a database column or a timestamp holds.
EDGE_INTS = [0, -1, 2**31, 2**53 + 1, 2**62, 2**63, 2**64, -(2**63) - 1, 10**30]
json_scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from(EDGE_INTS)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.just("\x00")
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["id", "active", "name", "images", "metadata", "product", "unit_amount", "currency",
          "default_price", "deleted", "type", "payment_status", "refunded", "payment_intent",
          "client_reference_id"]  # fmt: skip


def base_event(kind: str) -> dict[str, Any]:
    n = next(_ids)
    if kind.startswith("product"):
        obj = product(f"prod_fuzz{n % 7}", name=f"Fuzz {n}")
    elif kind.startswith("price"):
        obj = price(f"price_fuzz{n % 7}", f"prod_fuzz{n % 5}")
    else:
        obj = {"id": f"cs_fuzz{n}", "object": "checkout.session", "payment_status": "paid"}
    return event(kind, obj)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    payload = base_event(draw(st.sampled_from(EVENT_TYPES)))
    obj = payload["data"]["object"]
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        target = draw(st.sampled_from(["object", "object", "event"]))
        where = obj if target == "object" else payload
        keys = FIELDS if target == "object" else ["type", "data", "created", "object"]
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            where[key] = draw(st.sampled_from(EDGE_INTS) | json_values)
        else:
            where.pop(key, None)
    return payload


@pytest.fixture
def stripe_unreachable(monkeypatch):
    """Handlers that ask Stripe fail at once (nothing listens; no retry back-off)."""
    client = stripe.StripeClient(
        "sk_test_fuzz", base_addresses={"api": "http://127.0.0.1:9"}, max_network_retries=0
    )
    monkeypatch.setattr(stripe_api, "client", lambda: client)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=mutated_events())
def test_random_signed_events_never_crash_and_are_never_applied_twice(
    webhook, stripe_unreachable, payload
):
    body = json.dumps(payload).encode()

    first = webhook.post(body)
    second = webhook.post(body)

    assert first.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST, 500)
    if first.status_code == HTTPStatus.BAD_REQUEST:
        assert second.status_code == HTTPStatus.BAD_REQUEST
        return
    record = StripeEvent.objects.get(stripe_id=payload["id"])
    if first.status_code == 500:  # only a handler's failure, recorded for replay
        assert record.status == StripeEvent.Status.FAILED
        assert record.error
    else:
        assert second.status_code == HTTPStatus.OK
        assert record.attempts == 1, "a processed event was applied again"


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_signed_bodies_are_a_clean_400(client, body):
    response = client.post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(body)},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_a_deep_copy_of_a_real_event_still_applies(webhook):
    payload = copy.deepcopy(event("product.created", product("prod_ok", name="Kettle")))

    assert webhook.post(payload).status_code == HTTPStatus.OK
    assert Product.objects.get(stripe_id="prod_ok").name == "Kettle"


@pytest.mark.parametrize("where", ["value", "key"])
def test_a_nul_character_is_rejected_not_stored(webhook, where):
    obj = product("prod_nul", name="Tea\u0000pot") if where == "value" else product("prod_nul")
    if where == "key":
        obj["metadata"] = {"a\u0000b": "x"}

    response = webhook.post(event("product.created", obj))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not StripeEvent.objects.exists()


def with_raw(payload: dict[str, Any], raw: str) -> bytes:
    """The event as JSON with the string "RAW" replaced by `raw`, as written (not escaped)."""
    return json.dumps(payload).replace('"RAW"', raw).encode()


@pytest.mark.parametrize(
    "raw",
    ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", '"\\ud800"', '"a\\udfffb"'],
    ids=["nan", "infinity", "minus-infinity", "1e999", "minus-1e999", "surrogate", "low-surrogate"],
)
def test_a_value_no_database_can_store_is_a_400(webhook, raw):
    """Python reads them; JSON has no NaN or infinity, and no database encodes a lone
    surrogate: PostgreSQL's jsonb refused them, and the webhook answered 500."""
    payload = event("product.created", product("prod_odd", metadata={"odd": "RAW"}))

    response = webhook.post(with_raw(payload, raw))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not StripeEvent.objects.exists()


def test_a_lone_surrogate_in_a_key_is_a_400(webhook):
    payload = event("product.created", product("prod_odd", metadata={"k": "v"}))
    body = json.dumps(payload).replace('"k"', '"\\ud800"').encode()

    assert webhook.post(body).status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize("field", ["id", "type"])
def test_an_id_or_type_longer_than_any_of_stripes_is_a_400(webhook, field):
    payload = event("product.created", product("prod_long"))
    payload[field] = "evt_" + "x" * 296

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not StripeEvent.objects.exists()


def test_an_ordinary_float_still_applies(webhook):
    payload = event("product.created", product("prod_float", name="Kettle"))
    payload["data"]["object"]["metadata"] = {"weight": "RAW"}

    response = webhook.post(with_raw(payload, "1.5e3"))

    assert response.status_code == HTTPStatus.OK
