from __future__ import annotations

from http import HTTPStatus

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail

pytestmark = pytest.mark.django_db

User = get_user_model()
GOOD_PASSWORD = "plum-orchard-velvet-42"


def signup(client, email="new@example.com", password=GOOD_PASSWORD, **extra):
    data = {"email": email, "password1": password, "password2": password, **extra}
    return client.post("/accounts/signup/", data)


def test_signup_creates_a_logged_in_user_and_goes_home(client):
    response = signup(client, email="Ada@Example.com")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"
    user = User.objects.get()
    assert user.username == user.email == "ada@example.com"
    assert user.check_password(GOOD_PASSWORD)
    assert client.get("/").context["user"] == user


def test_signup_follows_a_safe_next(client):
    response = signup(client, next="/dashboard/purchase/")

    assert response["Location"] == "/dashboard/purchase/"


def test_signup_ignores_an_offsite_next(client):
    response = signup(client, next="https://evil.example/")

    assert response["Location"] == "/"


@pytest.mark.parametrize("password", ["password", "12345678901", "short"])
def test_signup_refuses_a_weak_password(client, password):
    response = signup(client, password=password)

    assert response.status_code == HTTPStatus.OK
    assert response.context["form"].errors["password2"]
    assert not User.objects.exists()


def test_signup_refuses_a_password_like_the_email(client):
    response = signup(client, email="marmalade.sandwich@example.com", password="marmalade.sandwich")

    assert response.status_code == HTTPStatus.OK
    assert "too similar" in str(response.context["form"].errors["password2"])
    assert not User.objects.exists()


def test_signup_refuses_mismatched_passwords(client):
    response = client.post(
        "/accounts/signup/",
        {"email": "a@example.com", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD + "x"},
    )

    assert response.status_code == HTTPStatus.OK
    assert not User.objects.exists()


def test_signup_refuses_a_taken_email_whatever_its_case(client, make_user):
    make_user(username="taken@example.com", email="taken@example.com")

    response = signup(client, email="TAKEN@example.com")

    assert response.status_code == HTTPStatus.OK
    assert "already exists" in str(response.context["form"].errors["email"])
    assert User.objects.count() == 1


def test_login_with_email_in_any_case(client, make_user):
    user = make_user(username="kim@example.com", email="kim@example.com")

    response = client.post(
        "/accounts/login/", {"username": "KIM@example.com", "password": "correct horse battery"}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"
    assert client.get("/").context["user"] == user


def test_login_with_a_wrong_password_fails(client, make_user):
    make_user(username="kim@example.com", email="kim@example.com")

    response = client.post("/accounts/login/", {"username": "kim@example.com", "password": "nope"})

    assert response.status_code == HTTPStatus.OK
    assert response.context["form"].errors
    assert not client.get("/").context["user"].is_authenticated


def test_header_shows_who_is_logged_in(client, make_user):
    user = make_user()
    client.force_login(user)

    html = client.get("/").content.decode()

    assert user.email in html
    assert 'data-testid="logout"' in html
    assert 'data-testid="login-link"' not in html


def test_header_offers_login_and_signup_when_logged_out(client):
    html = client.get("/").content.decode()

    assert 'href="/accounts/login/"' in html
    assert 'href="/accounts/signup/"' in html


def test_logout_by_post(client, make_user):
    client.force_login(make_user())

    response = client.post("/accounts/logout/")

    assert response.status_code == HTTPStatus.FOUND
    assert not client.get("/").context["user"].is_authenticated


def test_logout_by_get_is_not_allowed(client, make_user):
    client.force_login(make_user())

    response = client.get("/accounts/logout/")

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert client.get("/").context["user"].is_authenticated


def test_lockout_refuses_even_the_right_password(client, make_user):
    make_user(username="lock@example.com", email="lock@example.com")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "lock@example.com", "password": "wrong"})

    response = client.post(
        "/accounts/login/", {"username": "lock@example.com", "password": "correct horse battery"}
    )

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b'data-testid="locked-out"' in response.content
    assert not client.get("/").context["user"].is_authenticated


def test_failures_below_the_limit_do_not_lock(client, make_user):
    make_user(username="lock@example.com", email="lock@example.com")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/accounts/login/", {"username": "lock@example.com", "password": "wrong"})

    response = client.post(
        "/accounts/login/", {"username": "lock@example.com", "password": "correct horse battery"}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert client.get("/").context["user"].is_authenticated


def test_lockout_of_one_account_follows_its_email_in_any_case(client, make_user):
    make_user(username="lock@example.com", email="lock@example.com")
    for i in range(settings.AXES_FAILURE_LIMIT):
        # Vary the case: the account itself (from this address) is what gets locked.
        client.post(
            "/accounts/login/",
            {"username": "LOCK@example.com" if i % 2 else "lock@example.com", "password": "x"},
            REMOTE_ADDR="10.0.0.9",
        )

    response = client.post(
        "/accounts/login/",
        {"username": "lock@example.com", "password": "correct horse battery"},
        REMOTE_ADDR="10.0.0.9",
    )

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_wrong_passwords_from_one_address_do_not_lock_staff_out_from_another(client, make_user):
    """Anyone who knows a staff email could otherwise lock staff out of refunds and shipping."""
    make_user(username="staff@example.com", email="staff@example.com", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        client.post(
            "/accounts/login/",
            {"username": "staff@example.com", "password": "wrong"},
            REMOTE_ADDR="198.51.100.66",
        )

    response = client.post(
        "/accounts/login/",
        {"username": "staff@example.com", "password": "correct horse battery"},
        REMOTE_ADDR="203.0.113.10",
    )

    assert response.status_code == HTTPStatus.FOUND
    assert client.get("/").context["user"].is_authenticated


def test_behind_a_proxy_the_lockout_is_per_client_not_per_proxy(settings, client, make_user):
    settings.TRUSTED_PROXY_HOPS = 1
    make_user(username="staff@example.com", email="staff@example.com", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": "staff@example.com", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="198.51.100.66",
        )

    locked = client.post(
        "/accounts/login/",
        {"username": "staff@example.com", "password": "correct horse battery"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.66",
    )
    staff = client.post(
        "/accounts/login/",
        {"username": "staff@example.com", "password": "correct horse battery"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.10",
    )

    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert staff.status_code == HTTPStatus.FOUND


def test_password_reset_sends_a_working_link(client, make_user):
    user = make_user(username="forgot@example.com", email="forgot@example.com")

    response = client.post("/accounts/password_reset/", {"email": "forgot@example.com"})

    assert response.status_code == HTTPStatus.FOUND
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    link = next(word for word in body.split() if "/accounts/reset/" in word)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD},
    )
    assert done.status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert user.check_password(GOOD_PASSWORD)
