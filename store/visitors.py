"""What a cached page needs to know of its visitor, memoised per process per session.

A returning visitor's header (the cart count, whether the page is the stranger's one, the
account part for a logged-in user) is read from the database once, then kept in `memo`
under the session key (`pagecache.cache.Cache`). An entry is valid while none of what it
`depends` on changed since it was read (every cart write publishes its cart under
"carts", every session save or delete its key's hash under "sessions", in every process:
`live.publish.publish_on_commit`), for MEMO_SECONDS at most (a backstop for what nobody
publishes: a product deleted from carts, a password changed elsewhere), and never beyond
the session's expiry. A warm returning visitor costs no query at all.

This memo ONLY renders the header and slots of cached pages. It never authorises anything:
every POST, the checkout, the orders and the members' area go through Django's session
and `request.user` as usual. The app that knows sessions and carts builds the entries
(`cart.selectors.visitor`, through the `visitor` context variable); store only reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pagecache.cache import Cache
from pagecache.changes import Depends, changes

SESSIONS = "sessions"  # topic: a session's saved data changed (id: `session_topic_id`)
CARTS = "carts"  # topic: a cart's lines changed (id: the cart's)
USERS = "users"  # topic: what a logged-in user's page shows changed: a first cart, a pass
MEMO_SIZE = 10_000  # sessions remembered per process (the least recently used go first)
MEMO_SECONDS = 30.0


def session_topic_id(session_key: str) -> int:
    """A stable 53-bit integer for a session key (topics carry integer ids; 53 bits stay
    exact in any JSON reader)."""
    digest = hashlib.blake2b(session_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 11


@dataclass
class Visitor:
    """What the header shows this visitor."""

    shared: bool  # the shared page fits: no flash message waits
    count: int  # units in the cart
    user_id: int | None = None  # logged in as
    cart_id: int | None = None  # the cart it counts
    depends: tuple[tuple[str, int], ...] = ()  # (topic, id): a change to any makes it stale
    expires: datetime | None = None  # when it is stale (the TTL, the session's end)
    # A logged-in visitor's own parts of the page (placeholder -> bytes), set by the page.
    slots: dict[bytes, bytes] | None = field(default=None, repr=False)


STRANGER = Visitor(shared=True, count=0)

memo: Cache[Visitor] = Cache(MEMO_SIZE)


def memoised(key: str, build: Callable[[], Visitor | None]) -> Visitor | None:
    """The memo's Visitor for this session key, else `build()`'s, kept when it says what it
    depends on and until when."""
    found = memo.get(key)
    if found is not None:
        return found
    stamp = changes.stamp  # before reading: a change meanwhile makes it stale
    visitor = build()
    if visitor is not None and visitor.depends and visitor.expires is not None:
        depends = Depends(ids=visitor.depends)
        memo.put(key, visitor, stamp=stamp, depends=depends, expires=visitor.expires)
    return visitor
