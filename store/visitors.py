"""What a cached page needs to know of its visitor, memoised per process per session.

A returning visitor's header (the cart count, whether the page is the stranger's one, the
account part for a logged-in user) is read from the database once, then kept here under
the session key, stamped with the broker's `stamp` (`live.broker`). An entry is valid
while none of what it `depends` on changed since (every cart write publishes its cart
under "carts", every session save or delete its key's hash under "sessions", in every
process: `live.broker.publish_on_commit`), for MEMO_SECONDS at most (a backstop for what
nobody publishes: a product deleted from carts, a password changed elsewhere), and never
beyond the session's expiry. A warm returning visitor costs no query at all.

This memo ONLY renders the header and slots of cached pages. It never authorises anything:
every POST, the checkout, the orders and the members' area go through Django's session
and `request.user` as usual. The app that knows sessions and carts builds the entries
(`cart.selectors.visitor`, through the `visitor` context variable); store only reads them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.conf import settings
from django.db import connection

from live.broker import get_broker

SESSIONS = "sessions"  # topic: a session's saved data changed (id: `session_topic_id`)
CARTS = "carts"  # topic: a cart's lines changed (id: the cart's)
USERS = "users"  # topic: what a logged-in user's page shows changed: a first cart, a pass
MEMO_SIZE = 10_000  # sessions remembered per process (the least recently used go first)
MEMO_SECONDS = 30.0

T = TypeVar("T")


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
    expires: float = 0.0  # time.time() after which it is stale (the TTL, the session's end)
    # A logged-in visitor's own parts of the page (placeholder -> bytes), set by the page.
    slots: dict[bytes, bytes] | None = field(default=None, repr=False)


STRANGER = Visitor(shared=True, count=0)


class Memo(Generic[T]):
    """Key -> value, each valid while nothing it depends on changed since the broker stamp
    it was read at, and until its time; bounded (least recently used go), thread-safe."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            return None
        broker = get_broker()
        if time.time() >= entry.expires or any(
            broker.changed_at(topic, pk) > entry.stamp for topic, pk in entry.depends
        ):
            self.forget(key)
            return None
        return entry.value

    def put(
        self,
        key: Hashable,
        value: T,
        *,
        stamp: int,
        depends: Iterable[tuple[str, int]],
        expires: float,
    ) -> None:
        """Keep `value`, read at broker `stamp` (taken BEFORE reading), until `expires`
        (a time.time()) or a change to any of `depends` ((topic, id) pairs)."""
        with self._lock:
            self._entries[key] = _Entry(stamp, tuple(depends), expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True)
class _Entry(Generic[T]):
    stamp: int
    depends: tuple[tuple[str, int], ...]
    expires: float
    value: T


def caching() -> bool:
    """Whether memos may be used: LIVE_GRID_CACHE on, outside a transaction (a memo trusts
    that every change is published once committed, and that this process's dispatcher
    hears other processes' changes: not while it is not listening)."""
    if not getattr(settings, "LIVE_GRID_CACHE", False) or connection.in_atomic_block:
        return False
    return get_broker().listening()


memo: Memo[Visitor] = Memo()


def memoised(key: str, build: Callable[[], Visitor | None]) -> Visitor | None:
    """The memo's Visitor for this session key, else `build()`'s, kept when it says what it
    depends on (only when `caching()`)."""
    if not caching():
        return build()
    found = memo.get(key)
    if found is not None:
        return found
    stamp = get_broker().stamp  # before reading: a change meanwhile makes it stale
    visitor = build()
    if visitor is not None and visitor.depends and visitor.expires > time.time():
        memo.put(key, visitor, stamp=stamp, depends=visitor.depends, expires=visitor.expires)
    return visitor
