"""store.csrf draws the token of a cached page faster than Django: Django's own middleware
must accept every token it draws, for a stranger (a new secret) and a returning visitor
(the cookie's), in a form field or a header, and the tokens must be as random as Django's."""

from collections import Counter
from http import HTTPStatus

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import (  # type: ignore[attr-defined]  # Django's own unmasking
    CSRF_ALLOWED_CHARS,
    CsrfViewMiddleware,
    _unmask_cipher_token,
)
from django.test import Client, RequestFactory

from store import csrf
from tests.factories import ProductFactory
from tests.support.pages import cache_on

DRAWS = 2000
rf = RequestFactory()


def _view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def draw(cookie: str | None) -> tuple[str, str]:
    """A GET through Django's middleware whose view draws a token: (the token, the cookie
    the browser holds after it)."""
    request = rf.get("/")
    if cookie is not None:
        request.COOKIES[settings.CSRF_COOKIE_NAME] = cookie
    drawn: list[str] = []

    def view(request: HttpRequest) -> HttpResponse:
        drawn.append(csrf.token(request))
        return HttpResponse("page")

    response = CsrfViewMiddleware(view)(request)
    assert isinstance(response, HttpResponse)
    set_cookie = response.cookies.get(settings.CSRF_COOKIE_NAME)
    return drawn[0], set_cookie.value if set_cookie is not None else cookie or ""


def accepted(token: str, cookie: str, *, header: bool = False) -> bool:
    """Does Django's middleware let a POST with this token and cookie through?"""
    if header:  # as htmx sends it (hx-headers)
        request = rf.post("/cart/add/", {}, HTTP_X_CSRFTOKEN=token)
    else:
        request = rf.post("/cart/add/", {"csrfmiddlewaretoken": token})
    request.COOKIES[settings.CSRF_COOKIE_NAME] = cookie
    middleware = CsrfViewMiddleware(_view)
    middleware.process_request(request)
    return middleware.process_view(request, _view, (), {}) is None


def test_the_middleware_accepts_every_token_drawn_for_strangers_and_returning_visitors():
    rejected = []
    cookie: str | None = None
    for n in range(DRAWS):
        if n % 2 == 0:
            cookie = None  # a stranger: a new secret every other draw
        token, cookie = draw(cookie)
        if not accepted(token, cookie, header=n % 3 == 0):
            rejected.append((token, cookie))

    assert rejected == []


def test_every_token_is_djangos_shape_with_a_new_mask_each_time():
    token, cookie = draw(None)
    tokens = [draw(cookie)[0] for _ in range(DRAWS)]

    assert all(len(t) == 64 and set(t) <= set(CSRF_ALLOWED_CHARS) for t in tokens)
    assert {_unmask_cipher_token(t) for t in tokens} == {cookie}
    assert len(set(tokens)) == DRAWS and len({t[:32] for t in tokens}) == DRAWS


def test_the_characters_drawn_are_uniform():
    """Django's alphabet has 62 characters: mapping a byte onto them without dropping the
    last 8 byte values would draw 8 of them 25% more often than the others."""
    counts = Counter("".join(csrf.random_string() for _ in range(5000)))

    expected = 5000 * 32 / len(CSRF_ALLOWED_CHARS)  # ~2581 each, sigma ~50
    assert set(counts) == set(CSRF_ALLOWED_CHARS)
    assert all(abs(n - expected) < 0.15 * expected for n in counts.values()), counts


def test_a_cookie_that_is_no_secret_takes_djangos_path(monkeypatch):
    request = rf.get("/")
    request.META["CSRF_COOKIE"] = "not-a-secret"
    calls: list[HttpRequest] = []
    monkeypatch.setattr(csrf, "get_token", lambda r: calls.append(r) or "django's")

    assert csrf.token(request) == "django's" and calls == [request]


@pytest.mark.django_db(transaction=True)
def test_real_posts_through_the_middleware_with_the_cached_pages_tokens(settings):
    cache_on(settings)
    mug = ProductFactory(name="Mug", stock=99)
    statuses = []
    for _ in range(10):
        browser = Client(enforce_csrf_checks=True)  # a stranger: a new secret each time
        for _ in range(3):  # then a returning visitor: the cookie's secret, a new mask
            html = browser.get("/").content.decode()
            token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
            data = {"product": mug.pk, "quantity": 1, "csrfmiddlewaretoken": token}
            statuses.append(browser.post("/cart/add/", data).status_code)

    assert HTTPStatus.FORBIDDEN not in statuses
    assert set(statuses) == {HTTPStatus.FOUND}
