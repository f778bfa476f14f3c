"""Copies kept per process, each until what it was made of changes (`pagecache.changes`).

One rule for every copy: it is made from what was current at a stamp, read BEFORE reading
what it is made of (a change meanwhile makes it stale), and it is used while nothing of
its `Depends` changed since, before its time (`expires`: a reservation ending, a TTL) and
never after MAX_AGE. What it depends on is checked once per change, not once per use.
Nothing is kept or used unless `caching()`.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import connection

from live.broker import get_broker
from live.channel import CARDS
from pagecache.changes import Depends, changes

# Nothing kept is older than this, whatever the channel says: a change committed but never
# announced (its publisher killed between the two) shows for at most this long.
MAX_AGE_SECONDS = 300.0
PAGES_SIZE = 3000  # pages and lists kept per process (the least recently used go first)
FRAGMENTS_SIZE = 100_000  # fragments kept per process

T = TypeVar("T")

_caches: weakref.WeakSet[Cache[Any]] = weakref.WeakSet()


def caching() -> bool:
    """Whether copies may be kept and used: `LIVE_GRID_CACHE` on, outside a transaction (a
    copy trusts that every change is published once committed), and while this process's
    broker hears every change (`live.broker.Broker.listening`)."""
    if not getattr(settings, "LIVE_GRID_CACHE", False) or connection.in_atomic_block:
        return False
    return get_broker().listening()


class _Entry(Generic[T]):
    __slots__ = ("checked", "depends", "expires", "stamp", "value")

    def __init__(self, value: T, depends: Depends, stamp: int, expires: float) -> None:
        self.value = value
        self.depends = depends
        self.stamp = stamp  # when reading what it is made of began
        self.expires = expires  # a time.time()
        self.checked = stamp  # the last stamp at which nothing it depends on had changed


class Cache(Generic[T]):
    """Key -> a kept value (never None), bounded (the least recently used go first),
    thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.clear()
        _caches.add(self)

    def get(self, key: Hashable) -> T | None:
        """The value kept for `key`, if still fresh (None: none, stale, or not caching)."""
        return self._get(key) if caching() else None

    def put(
        self,
        key: Hashable,
        value: T,
        *,
        stamp: int,
        depends: Depends,
        expires: datetime | None = None,
    ) -> None:
        """Keep `value`, made from what was current at `stamp` (`changes.stamp`, read
        before reading), until a change to what it `depends` on, or `expires`."""
        if caching():
            self._put(key, value, stamp, depends, expires)

    def cached(
        self,
        key: Hashable,
        build: Callable[[], tuple[T, datetime | None]],
        depends: Depends,
    ) -> T:
        """The value kept for `key`, else `build()`'s (value, valid until), kept."""
        if not caching():
            return build()[0]
        found = self._get(key)
        if found is not None:
            return found
        stamp = changes.stamp
        value, expires = build()
        self._put(key, value, stamp, depends, expires)
        return value

    def clear(self) -> None:
        """Drop every copy (also in a forked child, where another thread may have held the
        lock: both are new)."""
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()

    def _get(self, key: Hashable) -> T | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        stamp = changes.stamp
        if time.time() >= entry.expires or (
            entry.checked != stamp and not changes.unchanged_since(entry.stamp, entry.depends)
        ):
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        entry.checked = stamp
        return entry.value

    def _put(
        self, key: Hashable, value: T, stamp: int, depends: Depends, expires: datetime | None
    ) -> None:
        latest = time.time() + MAX_AGE_SECONDS
        until = latest if expires is None else min(expires.timestamp(), latest)
        with self._lock:
            self._entries[key] = _Entry(value, depends, stamp, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


# Whole pages and what they are built from (lists of ids), keyed by what they show.
pages: Cache[Any] = Cache(PAGES_SIZE)
# Each fragment (`live.registry`) by id: what the stream renders for a change, pages reuse.
_fragments: Cache[str] = Cache(FRAGMENTS_SIZE)

Rendered = dict[int, tuple[str, datetime | None]]  # id -> (html, valid until)


def fragments(ids: list[int], render: Callable[[list[int]], Rendered]) -> dict[int, str]:
    """The current fragment of each id (missing: not on any page now), kept until that id
    changes under `cards`; `render(missing)` answers the rest in one call. A change costs
    the changed fragments, never the others."""
    if not caching():
        return {pk: html for pk, (html, _) in render(ids).items()}
    found: dict[int, str] = {}
    missing: list[int] = []
    for pk in ids:
        html = _fragments._get(pk)
        if html is None:
            missing.append(pk)
        else:
            found[pk] = html
    if missing:
        stamp = changes.stamp
        for pk, (html, expires) in render(missing).items():
            found[pk] = html
            _fragments._put(pk, html, stamp, Depends(ids=((CARDS, pk),)), expires)
    return found


def forget_all() -> None:
    """Drop every copy in this process."""
    for cache in list(_caches):
        cache.clear()


def _after_fork() -> None:
    """A forked child has a broker of its own, which has heard nothing yet: so does it."""
    changes.reset()
    forget_all()


os.register_at_fork(after_in_child=_after_fork)
