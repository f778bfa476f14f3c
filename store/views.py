"""The shop's pages: the grid (search, categories, sort, pages) and the product page.

Most visitors see the same page: anyone with no flash message waiting, whether a
stranger, a returning shopper with a cart, or a logged-in user. A page is rendered once
and kept until its cards or its listing change (`pagecache.cache.pages`), from cards kept
one by one (`store.live.cards`: a change re-renders that card only), and kept as bytes
split at unguessable placeholders:
the visitor's CSRF token, cart count and account part of the header are spliced in. What
the header shows a returning visitor comes from this process's memo (`store.visitors`):
a warm visitor costs no query. Someone with a message to show gets a full render around
the same cached cards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.engine import Engine
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from live.broker import get_broker
from live.channel import CARDS
from live.registry import CSRF_PLACEHOLDER
from pagecache.cache import pages
from pagecache.changes import Depends
from store import csrf, live
from store.models import DEFAULT_SORT, MAX_QUERY_LENGTH, SORTS, Product
from store.visitors import Visitor

PER_PAGE = 48
PER_PAGE_CHOICES = (24, 48)
CATEGORIES_SECONDS = 60
MAX_PAGE = 10_000  # beyond this a page number is not a page (404), not a giant OFFSET
# A cached page survives changes to cards it does not show, so the stream position it embeds
# (`live_last`) ages: it is rebuilt this often, so a new viewer's catch-up stays short.
PAGE_SECONDS = 60
# The visitor's cart count, spliced like the CSRF token: unguessable, per process.
COUNT_PLACEHOLDER = CSRF_PLACEHOLDER.replace("LIVECSRF", "CARTCOUNT")
# The parts that depend on who is logged in: a stranger's, or the user's own (rendered once
# per session, kept in the memo). Context variable -> (placeholder, template).
USER_SLOTS = {
    "account_slot": (  # the header's "Orders", log in / the user and log out
        CSRF_PLACEHOLDER.replace("LIVECSRF", "ACCOUNT"),
        "includes/_account.html",
    ),
    "access_slot": (  # the grid's members' area banner: log in, purchase or enter
        CSRF_PLACEHOLDER.replace("LIVECSRF", "ACCESS"),
        "accounts/includes/_access_banner.html",
    ),
}
_USER_PLACEHOLDERS = [placeholder.encode() for placeholder, _ in USER_SLOTS.values()]
_PLACEHOLDERS = [CSRF_PLACEHOLDER, COUNT_PLACEHOLDER, *(p for p, _ in USER_SLOTS.values())]
_SLOTS = re.compile(f"({'|'.join(_PLACEHOLDERS)})".encode())
_CSRF_BYTES = CSRF_PLACEHOLDER.encode()
SORT_LABELS = {"name": "Name", "price": "Price: low to high", "-price": "Price: high to low"}
SORT_LABELS["newest"] = "Newest"


@dataclass(frozen=True)
class Listing:
    """What a grid URL asks for."""

    category: str
    q: str
    sort: str
    page: int
    per_page: int

    def url(self, **change: Any) -> str:
        """This listing's URL with some parameters changed (defaults left out)."""
        values = {**self.__dict__, **change}
        path = (
            reverse("store:category", args=[values["category"]])
            if values["category"]
            else reverse("store:grid")
        )
        query = {
            "q": values["q"],
            "sort": values["sort"] if values["sort"] != DEFAULT_SORT else "",
            "per_page": values["per_page"] if values["per_page"] != PER_PAGE else "",
            "page": values["page"] if values["page"] != 1 else "",
        }
        query = {k: v for k, v in query.items() if v}
        return path + (f"?{urlencode(query)}" if query else "")


def _listing(request: HttpRequest, category: str) -> Listing:
    page_text = request.GET.get("page", "1")
    # ASCII digits only: str.isdigit() also admits "²" and other digits int() refuses.
    if not (page_text.isascii() and page_text.isdigit()) or not 1 <= int(page_text) <= MAX_PAGE:
        raise Http404("No such page")
    per_page = request.GET.get("per_page", "")
    sort = request.GET.get("sort", DEFAULT_SORT)
    return Listing(
        category=category,
        # A NUL is no search term, and PostgreSQL refuses it in any query: read as a space.
        q=" ".join(request.GET.get("q", "").replace("\x00", " ").split()),
        sort=sort if sort in SORTS else DEFAULT_SORT,
        page=int(page_text),
        per_page=int(per_page) if per_page in {str(n) for n in PER_PAGE_CHOICES} else PER_PAGE,
    )


def _page_ids(listing: Listing) -> tuple[list[tuple[int, str]], bool, str | None]:
    """(id, category) of the cards on this page, whether another page follows, and the
    category's name (None: no such category): one query, whatever the catalog's size (no
    COUNT: a next page is one extra row), and one more for a category search that found
    nothing (an empty page, or a 404 if the category itself has nothing)."""
    products = Product.objects.visible()
    if listing.category:
        products = products.in_category(listing.category)
    rows: list[tuple[int, str]] = []
    if len(listing.q) <= MAX_QUERY_LENGTH:
        start = (listing.page - 1) * listing.per_page
        rows = list(
            products.search(listing.q)
            .sorted_by(listing.sort)
            .values_list("pk", "category")[start : start + listing.per_page + 1]
        )
    name: str | None = ""
    if listing.category:
        name = rows[0][1] if rows else products.values_list("category", flat=True).first()
    return rows[: listing.per_page], len(rows) > listing.per_page, name


def _categories() -> tuple[list[tuple[str, str]], datetime]:
    """The category links, (slug, name): re-read every CATEGORIES_SECONDS, not on every
    change (at 100,000 products the query costs more than a page). A new category's link
    appears that much later; its page works at once."""
    rows = (  # active products, without the price join `visible()` makes: an index scan
        Product.objects.filter(active=True)
        .exclude(category_slug="")
        .order_by("category_slug")
        .values_list("category_slug", "category")
        .distinct()
    )
    return list(dict(rows).items()), timezone.now() + timedelta(seconds=CATEGORIES_SECONDS)


def _visitor(request: HttpRequest) -> Visitor | None:
    """Who the header is for, when the shared page can show it: from the project's context
    processors (`header_visitor`: store knows the variable, not the app that answers it);
    None for a full render (also when no processor answers it)."""
    if request.COOKIES.get("messages"):  # a flash message waits (empty: one just shown)
        return None
    header = _processed(request).get("header_visitor")
    if header is None:
        return None
    visitor: Visitor | None = header()
    return visitor if visitor is not None and visitor.shared else None


def _user_slots(request: HttpRequest, visitor: Visitor) -> dict[bytes, bytes] | None:
    """A logged-in visitor's own parts (header, banner): rendered once per session and kept
    with its memo entry (None: the session and the memo disagree; render in full)."""
    if visitor.slots is None:
        if request.user.pk != visitor.user_id:
            return None
        visitor.slots = {
            placeholder.encode(): render_to_string(
                template, {"csrf_token": CSRF_PLACEHOLDER}, request=request
            ).encode()
            for placeholder, template in USER_SLOTS.values()
        }
    return visitor.slots


Build = Callable[[], tuple[Any, datetime | None]]


def serve_page(
    request: HttpRequest,
    template: str,
    context: Callable[[], dict[str, Any]],
    *,
    keep: Callable[[Build], Any],
) -> HttpResponse:
    """Render `template` with `context()`: from the shared page cache for visitors with no
    flash message (their token, cart count and account part spliced in), else in full.

    `keep(build)` answers the split page as the page cache keeps it, calling `build()`
    (value, valid until) when it has none."""
    token = csrf.token(request).encode()
    visitor = _visitor(request)
    mine = None if visitor is None or visitor.user_id is None else _user_slots(request, visitor)
    if visitor is not None and (visitor.user_id is None or mine is not None):
        build: Build = lambda: _split(template, context())  # noqa: E731
        split = keep(build)
        parts, tokens, counts, users, strangers = split
        page = parts.copy()
        for i in tokens:
            page[i] = token
        count = str(visitor.count).encode()
        for i in counts:
            page[i] = count
        for i in users:
            page[i] = (mine or strangers)[page[i]].replace(_CSRF_BYTES, token)
        if hasattr(request, "session"):
            request.session.accessed = True  # it varies by the cookie: Vary: Cookie
        return HttpResponse(b"".join(page))
    response = render(request, template, context())
    response.content = response.content.replace(_CSRF_BYTES, token)
    return response


def _processed(request: HttpRequest) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for processor in Engine.get_default().template_context_processors:
        values.update(processor(request))
    return values


def _split(template: str, context: dict[str, Any]) -> tuple[Any, datetime | None]:
    """The page as a stranger sees it, split around the per-visitor slots, and where
    the slots are (with when it goes stale by the clock)."""
    anonymous: dict[str, Any] = {
        "user": AnonymousUser(),
        "perms": None,
        "messages": [],
        "cart_count": COUNT_PLACEHOLDER,
        "has_access": False,
        "csrf_token": CSRF_PLACEHOLDER,
    } | {name: mark_safe(placeholder) for name, (placeholder, _) in USER_SLOTS.items()}
    parts = _SLOTS.split(render_to_string(template, context | anonymous).encode())
    tokens = [i for i, part in enumerate(parts) if part == _CSRF_BYTES]
    counts = [i for i, part in enumerate(parts) if part == COUNT_PLACEHOLDER.encode()]
    users = [i for i, part in enumerate(parts) if part in _USER_PLACEHOLDERS]
    strangers = {
        placeholder.encode(): render_to_string(name, anonymous).encode()
        for placeholder, name in USER_SLOTS.values()
    }
    return (parts, tokens, counts, users, strangers), context.get("expires")


@require_GET
def product_grid(request: HttpRequest, slug: str = "") -> HttpResponse:
    listing = _listing(request, slug)
    broker = get_broker()

    def read_ids() -> tuple[tuple[list[tuple[int, str]], bool, str | None, Depends], None]:
        rows, more, category_name = _page_ids(listing)
        # The page changes with its own cards and with the listing, not with any change.
        shown = Depends(ids=tuple((CARDS, pk) for pk, _ in rows), topics=(live.LISTING,))
        return (rows, more, category_name, shown), None

    # Stock and reservations never change what a listing holds, or its order: only a
    # change under the listing topic reads the ids again.
    rows, more, category_name, shown = pages.cached(
        ("ids", listing), read_ids, Depends(topics=(live.LISTING,))
    )
    # Past the last page, or a category with nothing in it, is no page; a search that finds
    # nothing (in the shop or in a category) is an empty page.
    if not rows and (listing.page > 1 or category_name is None):
        raise Http404("No such page")

    def context() -> dict[str, Any]:
        last_id = broker.last_id  # before the cards: the stream replays anything after it
        ids = [pk for pk, _ in rows]
        cards = live.cards(ids)
        return {
            "grid_body": mark_safe("".join(cards[pk] for pk in ids if pk in cards)),
            "has_products": bool(cards),
            "live_last": last_id,
            # New products are inserted live only where the page shows the whole catalog.
            "live_insert": not (listing.q or listing.category or more or listing.page > 1)
            and listing.sort == DEFAULT_SORT,
            "listing": listing,
            "category_name": category_name,
            "categories": pages.cached("categories", _categories, Depends()),
            "sorts": [
                (listing.url(sort=s, page=1), label, s == listing.sort)
                for s, label in SORT_LABELS.items()
            ],
            "previous_url": listing.url(page=listing.page - 1) if listing.page > 1 else "",
            "next_url": listing.url(page=listing.page + 1) if more else "",
            "query_too_long": len(listing.q) > MAX_QUERY_LENGTH,
            "expires": timezone.now() + timedelta(seconds=PAGE_SECONDS),
        }

    return serve_page(
        request,
        "store/grid.html",
        context,
        keep=lambda build: pages.cached(("grid", listing), build, shown),
    )


@require_GET
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    broker = get_broker()

    def context() -> dict[str, Any]:
        last_id = broker.last_id
        products = Product.objects.visible().with_reserved().with_next_expiry()
        product = products.filter(pk=pk).first()
        if product is None:
            raise Http404("No such product")
        soon = timezone.now() + timedelta(seconds=PAGE_SECONDS)
        expires = min(product.next_expiry, soon) if product.next_expiry else soon
        return {"product": product, "live_last": last_id, "expires": expires}

    # The page shows one product: it changes with that product's card alone.
    depends = Depends(ids=((CARDS, pk),))
    return serve_page(
        request,
        "store/detail.html",
        context,
        keep=lambda build: pages.cached(("detail", pk), build, depends),
    )


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not healthy", never a 500 page
        return HttpResponse("database unreachable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")
