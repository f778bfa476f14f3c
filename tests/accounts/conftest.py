from __future__ import annotations

import pytest
from axes.utils import reset


@pytest.fixture(autouse=True)
def _axes_reset(db):
    """Each test starts with no failed log-ins on record (axes keeps them in the database)."""
    reset()
    yield
    reset()


PASSWORD = "correct horse battery"


def _make_user(**kwargs):
    """A user whose password is really stored.

    `UserFactory` sets the password after create with `skip_postgeneration_save`, so the
    hash never reaches the database; save it here until the factory is fixed.
    """
    from tests.factories import UserFactory

    user = UserFactory(**kwargs)
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


@pytest.fixture
def make_user(db):
    return _make_user


def _make_order(user, *, kind="access", status="paid", amount=900, currency="usd", **kwargs):
    """An order row as fulfilment leaves it: no Checkout Session, no stock held."""
    from django.utils import timezone

    from tests.factories import OrderFactory

    fields = {"stripe_session_id": None, "reserved_until": None} | kwargs
    return OrderFactory(
        user=user,
        kind=kind,
        status=status,
        currency=currency,
        amount_total=amount,
        paid_at=timezone.now() if status == "paid" else None,
        **fields,
    )


@pytest.fixture
def make_order(db):
    """An order row as fulfilment leaves it (no Stripe involved)."""
    return _make_order
