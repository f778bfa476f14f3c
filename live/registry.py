"""What live needs from the app whose pages it keeps current, registered once at startup.

live moves ids and HTML fragments; what they show is the registering app's business. That
app (store) calls `register(Source(...))` from its `AppConfig.ready()`:

- `render(ids)`: the current fragment of each of those ids that is still on the page, in
  page order (`{id: html}`); an id missing from the answer is removed from open pages.
- `order()`: every id on the page, in page order; or None when there are too many to send
  with every message (viewers then never insert a fragment they do not show already).
- `page()`: every fragment in page order, and when it goes stale by the clock alone.
- `next_change()`: when the next fragment changes by the clock, with no commit to announce
  it (a reservation running out, say); None when nothing is due.
- `changed_between(since, until)`: the ids whose fragments changed by the clock in
  (since, until].

live calls these each time it needs them and keeps no copy: the registering app may answer
from copies it keeps (store's are in pagecache), dropped as changes are heard (`listen`).

Fragments are shared by every viewer, so they must carry nobody's CSRF token: render forms
with `CSRF_PLACEHOLDER` where the token goes. The stream blanks it out (the page's script
fills in its own); a page replaces it with its request's token.

Listeners. `listen(listener)` (from an `AppConfig.ready()`): `listener(ids, topic)` hears
every change this process learns of, of any topic: its own publishes at once, other
processes' as the channel delivers them, before anything is rendered for them; `ids` None
when anything may have changed (the channel failed or fell behind).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured

# Unguessable, and new in every process: text from Stripe (a product's name) cannot contain
# it, so splicing a visitor's token in place of it never puts the token anywhere else.
CSRF_PLACEHOLDER = f"LIVECSRF{secrets.token_hex(16)}"


@dataclass(frozen=True)
class Page:
    """Every fragment on the page, in order, valid until `expires` (None: until a change)."""

    order: list[int]
    html: dict[int, str]
    expires: datetime | None = None


def _nothing_due() -> datetime | None:
    return None


def _nothing_changed(since: datetime, until: datetime) -> set[int]:
    return set()


@dataclass(frozen=True)
class Source:
    render: Callable[[Collection[int]], dict[int, str]]
    order: Callable[[], list[int] | None]
    page: Callable[[], Page]
    next_change: Callable[[], datetime | None] = field(default=_nothing_due)
    changed_between: Callable[[datetime, datetime], set[int]] = field(default=_nothing_changed)


_source: Source | None = None


def register(source: Source) -> None:
    global _source
    _source = source


def source() -> Source:
    if _source is None:
        raise ImproperlyConfigured("live: no app registered its fragments (live.registry)")
    return _source


Listener = Callable[[Collection[int] | None, str], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def changed(ids: Collection[int] | None, topic: str) -> None:
    """Tell every listener (None: anything may have changed, of any topic)."""
    for listener in _listeners:
        listener(ids, topic)
