"""The CSRF token a cached page splices in (`store.views.serve_page`), drawn faster than
Django's `get_token`, and exactly what Django's own `CsrfViewMiddleware` checks.

Django draws a secret and each token's mask as 32 `secrets.choice` calls each; here each
is one `os.urandom` call (rarely two), mapped onto Django's alphabet without bias (bytes
at or above the largest multiple of 62 are dropped). The masking is Django's own
(`_mask_cipher_secret`), written out. Sessions-stored tokens and a cookie that is not a
secret take Django's path.

Measured saving (bench/csrf.py: the cached grid page through Django's WSGI handler, this
token against Django's `get_token`, paired and interleaved in one process, 40 rounds of
200 pages; 12 or 2,000 products alike): 12-16% of a returning shopper's page (169 us
instead of 199 us on a quiet run), 25-29% of a stranger's (168 us instead of 225 us: two
draws). Served, the server's own work comes on top (about 90 us a request, from the
pages' ratio to the trivial view): still about 10% and 18%, over the 5% that keeps a copy.

tests/store/test_csrf.py has Django's middleware accept thousands of drawn tokens.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token

_CHARS = CSRF_ALLOWED_CHARS.encode()
_INDEX = {c: i for i, c in enumerate(CSRF_ALLOWED_CHARS)}
_LIMIT = 256 - 256 % len(_CHARS)  # bytes at or above it are dropped: no bias
_TABLE = bytes(_CHARS[b % len(_CHARS)] for b in range(256))
_DROP = bytes(range(_LIMIT, 256))


def random_string() -> str:
    """32 random characters of Django's CSRF alphabet, unbiased."""
    out = b""
    while len(out) < CSRF_SECRET_LENGTH:
        out += os.urandom(48).translate(_TABLE, _DROP)
    return out[:CSRF_SECRET_LENGTH].decode()


def token(request: HttpRequest) -> str:
    """What `django.middleware.csrf.get_token` answers: the cookie's secret (a new one for
    a stranger, set as Django sets it) masked with a fresh random mask."""
    meta = request.META
    if settings.CSRF_USE_SESSIONS:
        return get_token(request)
    if "CSRF_COOKIE" not in meta:
        meta["CSRF_COOKIE"] = random_string()  # as django.middleware.csrf does for a stranger
    secret = meta["CSRF_COOKIE"]
    if len(secret) != CSRF_SECRET_LENGTH or not set(secret) <= _INDEX.keys():
        return get_token(request)
    meta["CSRF_COOKIE_NEEDS_UPDATE"] = True
    mask = random_string()
    n = len(CSRF_ALLOWED_CHARS)
    cipher = "".join(
        CSRF_ALLOWED_CHARS[(_INDEX[x] + _INDEX[y]) % n] for x, y in zip(secret, mask, strict=True)
    )
    return mask + cipher
