"""How the store's pages go live: store's side of the `live` transport.

Store registers (from `StoreConfig.ready`) how a product card renders, what the grid
holds, and when a card changes by the clock alone (a reservation running out); `live`
does the rest (channel, broker, the `/live/` stream) without knowing what a product is.
Services call `publish_on_commit(product_ids)` inside their transaction: nothing is sent
for a change that is rolled back, and the message goes out only once the new state is
visible to readers. A change that may move a product in or out of a listing, or within it
(created, archived, renamed, described, re-priced, re-categorised: everything store's
upserts apply), is also published under the `listing` topic (`listing=True`); stock and
reservations are not, so the cached lists of a page's ids, and the stream's grid order,
survive them.

What live asks for comes from the page caches (`pagecache`): a card the stream renders for
a change is the one the pages then show (`cards`), and the stream's grid order and its
reset are read again only after a change that can alter them.

Cards are rendered with `CSRF_PLACEHOLDER` where a form's token goes: they are shared by
every viewer. The grid page puts its request's token there; the stream blanks it out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.template.loader import render_to_string

from live import registry
from live.channel import CARDS
from live.publish import publish
from live.registry import CSRF_PLACEHOLDER
from pagecache.cache import fragments, pages
from pagecache.changes import Depends
from store import models

__all__ = [
    "CSRF_PLACEHOLDER",
    "LISTING",
    "publish",
    "publish_on_commit",
    "register",
    "render_card",
]

CARD_TEMPLATE = "store/includes/_product_card.html"
_INDENT = re.compile(r"\n\s+")
# The topic of changes to what listings hold and in which order (cards are re-rendered
# under the default topic, as for any change).
LISTING = "listing"


def publish_on_commit(product_ids: Iterable[int], *, listing: bool = False) -> None:
    """Announce these products' new stock, price, name or visibility after commit;
    `listing`: the change may also move them in or out of a listing, or within it."""
    ids = list(product_ids)
    if ids:
        transaction.on_commit(lambda: _publish(ids, listing=listing))


def _publish(ids: list[int], *, listing: bool) -> None:
    if listing:  # first: a process that renders the cards knows the listing changed
        publish(ids, LISTING)
    publish(ids)


def visible_products(
    ids: Collection[int] | None = None,
) -> models.ProductQuerySet[models.AnnotatedProduct]:
    """Visible products with `reserved` and `next_expiry` (earliest live reservation end).

    One query, like the grid's.
    """
    products = models.Product.objects.visible().with_reserved().with_next_expiry()
    if ids is not None:
        products = products.filter(pk__in=list(ids))
    # Meta.ordering does not apply to aggregating queries: say it.
    return products.order_by("name", "id")


def render_card(product: Any) -> str:
    """The grid card, as the page renders it, with a placeholder for the CSRF token.

    Indentation is dropped (a newline stays wherever there was whitespace, so the page
    renders the same): it is a third of the bytes every viewer downloads.
    """
    html = render_to_string(CARD_TEMPLATE, {"product": product, "csrf_token": CSRF_PLACEHOLDER})
    return _INDENT.sub("\n", html).strip()


def render_timed(ids: Collection[int]) -> dict[int, tuple[str, datetime | None]]:
    """Each visible card and when it goes stale by the clock (a reservation ends): one query."""
    return {p.pk: (render_card(p), p.next_expiry) for p in visible_products(ids)}


def cards(ids: Collection[int]) -> dict[int, str]:
    """Each visible card, kept one by one (`pagecache.cache.fragments`): one query for
    those not kept."""
    return fragments(list(ids), render_timed)


# Above this many products the stream's messages carry no `order` (it would be every id):
# live.js then only inserts new cards on a page that shows the whole catalog, which a
# catalog this large never has.
MAX_ORDER = 480


def order() -> list[int] | None:
    ids = list(
        models.Product.objects.visible()
        .order_by("name", "id")
        .values_list("pk", flat=True)[: MAX_ORDER + 1]
    )
    return ids if len(ids) <= MAX_ORDER else None


def page() -> registry.Page:
    products = list(visible_products())
    expiries = [p.next_expiry for p in products if p.next_expiry is not None]
    return registry.Page(
        order=[p.pk for p in products],
        html={p.pk: render_card(p) for p in products},
        expires=min(expiries, default=None),
    )


def next_change() -> datetime | None:
    return models.reservations_next_expiry()


def changed_between(since: datetime, until: datetime) -> set[int]:
    return set(models.reservations_ended_product_ids(since=since, until=until))


def kept_order() -> list[int] | None:
    """`order()`, read again only after a change under `listing` (not for each change: at
    100,000 products it is a query of its own)."""
    ids: list[int] | None = pages.cached(
        "live-order", lambda: (order(), None), Depends(topics=(LISTING,))
    )
    return ids


def kept_page() -> registry.Page:
    """`page()`, kept until a card changes, or a reservation ends."""

    def build() -> tuple[registry.Page, datetime | None]:
        built = page()
        return built, built.expires

    result: registry.Page = pages.cached("live-page", build, Depends(topics=(CARDS,)))
    return result


def register() -> None:
    registry.register(
        registry.Source(
            render=cards,
            order=kept_order,
            page=kept_page,
            next_change=next_change,
            changed_between=changed_between,
        )
    )
