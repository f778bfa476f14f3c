from __future__ import annotations

from functools import cache

from django.http import HttpRequest

from accounts.services import user_has_access


def access(request: HttpRequest) -> dict[str, object]:
    """`has_access` for templates: evaluated only when a template asks, at most once.

    Anonymous users cost no query at all, so pages pinned at a query count stay pinned.
    """

    @cache
    def has_access() -> bool:
        return user_has_access(getattr(request, "user", None))

    return {"has_access": has_access}
