from __future__ import annotations

from http import HTTPStatus

import pytest

from accounts import services
from accounts.models import Entitlement

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, make_user):
    staff = make_user(is_staff=True, is_superuser=True)
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    client.staff = staff
    return client


def test_grant_by_hand_records_who(staff_client, make_user):
    member = make_user()

    response = staff_client.post(
        "/admin/accounts/entitlement/add/",
        {"user": member.pk, "feature": "members_area", "note": "Press pass"},
    )

    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    entitlement = Entitlement.objects.get()
    assert (entitlement.user, entitlement.granted_by) == (member, staff_client.staff)
    assert services.user_has_access(member)


def test_grant_by_hand_to_a_member_is_refused(staff_client, make_user):
    member = make_user()
    services.entitlement_grant(user=member, by=None)

    response = staff_client.post(
        "/admin/accounts/entitlement/add/", {"user": member.pk, "feature": "members_area"}
    )

    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors
    assert Entitlement.objects.count() == 1


def test_revoke_action_records_who(staff_client, make_user):
    live = services.entitlement_grant(user=make_user(), by=None)
    other = services.entitlement_grant(user=make_user(), by=None)

    response = staff_client.post(
        "/admin/accounts/entitlement/",
        {"action": "revoke", "_selected_action": [live.pk]},
    )

    assert response.status_code == HTTPStatus.FOUND
    live.refresh_from_db()
    other.refresh_from_db()
    assert live.revoked_at is not None and live.revoked_by == staff_client.staff
    assert other.revoked_at is None


def test_list_searches_by_email_and_filters_live(staff_client, make_user):
    services.entitlement_grant(user=make_user(email="findme@example.com"), by=None)
    gone = services.entitlement_grant(user=make_user(email="gone@example.com"), by=None)
    services.entitlement_revoke(entitlement=gone, by=None)

    found = staff_client.get("/admin/accounts/entitlement/", {"q": "findme"})
    live = staff_client.get("/admin/accounts/entitlement/", {"state": "live"})

    assert [e.user.email for e in found.context["cl"].result_list] == ["findme@example.com"]
    assert [e.user.email for e in live.context["cl"].result_list] == ["findme@example.com"]
