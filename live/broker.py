"""One broker per process: renders each change once and fans it out to every viewer.

The dispatcher thread listens on the channel (`live.channel`), coalesces what arrived
together, renders the changed fragments ONCE with the registered source
(`live.registry`), encodes one SSE message and hands the same bytes to every subscriber:
one hop per event loop (ASGI) or a bounded queue per viewer thread (WSGI).

Catching up. Each message has an id `<boot>:<seq>` (this process's run and a counter). A
browser that reconnects sends it back (`Last-Event-ID`, or `?last=` as embedded in the
page): if this process still remembers everything after it, the viewer gets the current
fragments of the ids it missed; otherwise (another process, too old) a `reset` with every
fragment on the page.

The clock. Some fragments change with no commit to announce it (a reservation runs out):
the dispatcher asks the source when the next such change is due and announces the ids
that changed once that time passes.

The page cache (`LIVE_GRID_CACHE`): the whole set of fragments, kept until the next change
or the next change by the clock, so a page is one join instead of one render per fragment.
What depends on some changes only (a page of cards, the list of a page's ids) is cached
under a `CacheKey` naming them: it survives every other change.

Topics. A change to `cards` (the default) is rendered and streamed; a change under any
other topic (cart ids under `carts`, say) only tells every process's caches: an app that
caches something per id takes `stamp` before reading it, and asks `changed_at(topic, id)`
whether its copy is older than the last change, in this process or any other. Only card
changes move `version`, which the page caches follow: a cart changing keeps every page.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from live import channel, registry
from live.registry import CSRF_PLACEHOLDER
from live.sse import encode
from live.subscribers import RESET, STOP, AsyncSubscriber, SyncSubscriber, offer_all

logger = logging.getLogger(__name__)

RING_SIZE = 512  # messages remembered for reconnecting viewers
START_TIMEOUT = 5.0  # seconds `start` waits for the channel to listen
CLOCK_LOOK_SECONDS = 30.0  # how often the dispatcher re-reads when the clock next changes
PAGE_CACHE_SIZE = 2000  # cached pages (or page id lists) per process before starting over
# Nothing cached is older than this, whatever the channel says: a change committed but never
# announced (its publisher killed between the two) shows for at most this long.
MAX_AGE = timedelta(minutes=5)
TRACKED_IDS = 100_000  # ids whose last change a topic remembers, before it forgets them all
CARDS = channel.CARDS


def publish(ids: Iterable[int], topic: str = CARDS) -> None:
    """Tell every listener that these ids changed (this process's caches at once).

    A failure here is logged, never raised: the change is committed already, and viewers
    catch up on their next reconnect. Within `publishes_coalesced` (the queue worker),
    the message leaves with the others of its burst.
    """
    ids = channel.normalise(ids)
    if not ids:
        return
    logger.debug("live: changed %s %s", topic, ids)
    broker = get_broker()
    broker.invalidate(ids, topic)
    if _coalescer is not None:
        _coalescer.add(ids, topic)
        return
    _send(broker, ids, topic)


def _send(broker: Broker, ids: list[int], topic: str) -> None:
    try:
        broker.send(ids, topic)
    except Exception:
        logger.exception("live: could not publish %s %s", topic, ids)


class Coalescer:
    """Publishes held for up to `seconds` and sent together, one message per topic: a
    worker applying a burst of webhooks announces each product once per burst, so every
    process renders its card once per burst, not once per event."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._pending: dict[str, set[int]] = {}
        self._wake = threading.Event()  # set exactly while something is pending, or closing
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-coalescer", daemon=True)
        self._thread.start()

    def add(self, ids: list[int], topic: str) -> None:
        with self._lock:
            self._pending.setdefault(topic, set()).update(ids)
            self._wake.set()

    def flush(self) -> None:
        """Send what is held: other topics first, so a process that renders the cards
        already knows what else changed."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if not self._closing.is_set():
                self._wake.clear()
        broker = get_broker()
        for topic in sorted(pending, key=lambda t: t == CARDS):
            _send(broker, sorted(pending[topic]), topic)

    def close(self) -> None:
        """Send what is held and stop."""
        with self._lock:
            self._closing.set()
            self._wake.set()
        self._thread.join(timeout=START_TIMEOUT)
        self.flush()

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                if self._closing.is_set():
                    return
                self._closing.wait(self.seconds)  # the window: what else changes joins it
                self.flush()
                close_old_connections()  # this thread's own connection, kept between bursts
        finally:
            connection.close()


_coalescer: Coalescer | None = None


@contextmanager
def publishes_coalesced(seconds: float) -> Iterator[None]:
    """Within this block, this process sends its publishes in bursts of `seconds` (the
    queue worker does: its changes come in bursts, and nobody views its process); what is
    held is sent when the block ends."""
    global _coalescer
    if _coalescer is not None:  # already coalescing
        yield
        return
    coalescer = _coalescer = Coalescer(seconds)
    try:
        yield
    finally:
        _coalescer = None
        coalescer.close()


def publishes_flush() -> None:
    """Send what `publishes_coalesced` holds, now: the queue worker calls it when its queue
    runs dry, so a lone change leaves at once and only a burst waits for the window."""
    if _coalescer is not None:
        _coalescer.flush()


def publish_on_commit(ids: Iterable[int], topic: str = CARDS) -> None:
    """`publish` once the current transaction commits; never for one rolled back."""
    ids = list(ids)
    if ids:
        transaction.on_commit(lambda: publish(ids, topic))


@dataclass(frozen=True)
class Snapshot:
    """Every fragment on the page in order, valid until `expires` (a change by the clock)."""

    version: int
    order: list[int]
    html: dict[int, str]
    expires: datetime | None
    body: str = field(repr=False, default="")
    cached: bool = False

    def fresh(self, version: int) -> bool:
        return self.version == version and (self.expires is None or timezone.now() < self.expires)


@dataclass(frozen=True)
class CacheKey:
    """A `Broker.cached` key whose value depends on these changes only: any id under each of
    `topics`, and each of `cards` (ids under the cards topic). A plain key depends on every
    change."""

    name: Any
    topics: tuple[str, ...] = ()
    cards: tuple[int, ...] = ()


def snapshot_build(version: int, *, cached: bool = False) -> Snapshot:
    page = registry.source().page()
    return Snapshot(
        version=version,
        order=list(page.order),
        html=page.html,
        expires=page.expires,
        body="".join(page.html[pk] for pk in page.order),
        cached=cached,
    )


def for_stream(html: str) -> str:
    """A shared fragment as the stream sends it: with no token (the page's script adds its own)."""
    return html.replace(CSRF_PLACEHOLDER, "")


class Broker:
    def __init__(self) -> None:
        self.boot = secrets.token_hex(4)
        self.seq = 0
        # Counts every change, of any topic (local publishes at once, others as they
        # arrive): `changed_at` answers in it, and a per-id copy is stamped with it.
        self.stamp = 0
        # The stamp at the last change of cards (or of anything unknown): what a cached value
        # with no named dependencies (not a `CacheKey`) and the snapshot follow. A cart or a
        # session changing leaves them alone.
        self.version = 0
        self.channel = channel.for_database()
        self._lock = threading.Lock()
        self._ring: deque[tuple[int, tuple[int, ...]]] = deque(maxlen=RING_SIZE)
        self._sync: set[SyncSubscriber] = set()
        self._loops: dict[asyncio.AbstractEventLoop, set[AsyncSubscriber]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._snapshot: Snapshot | None = None
        self._page: tuple[Snapshot, list[bytes]] | None = None
        self._next_change: datetime | None = None
        self._clock_checked: datetime | None = None
        # Per-fragment cache: id -> (stamp when rendering began, valid until, html).
        self._fragments: dict[int, tuple[int, datetime | None, str]] = {}
        self._changed: dict[str, dict[int, int]] = {}  # topic -> id -> stamp at its last change
        self._floors: dict[str, int] = {}  # topic -> stamp at its last change of unknown ids
        self._all_changed = 0  # stamp at the last change of anything (ids unknown)
        self._topics: dict[str, int] = {}  # topic -> stamp at its last change of any id
        # key -> (stamp when building began, valid until, value, stamp when last found fresh)
        self._pages: dict[Any, tuple[int, datetime | None, Any, int]] = {}
        self._order: tuple[int, list[int] | None] | None = None  # (stamp, source.order())
        self._failed_at = -60.0  # time.monotonic() of the last failure logged

    # ---- state shared with pages

    @property
    def last_id(self) -> str:
        return f"{self.boot}:{self.seq}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def invalidate(self, ids: Iterable[int] | None = None, topic: str = CARDS) -> None:
        """A change: to these ids of `topic`, or (None) to anything of any topic."""
        with self._lock:
            self.stamp += 1
            if ids is None or topic == CARDS:
                self.version = self.stamp
            if ids is None:
                self._all_changed = self.stamp
                return
            self._topics[topic] = self.stamp
            changed = self._changed.setdefault(topic, {})
            for pk in ids:
                changed[pk] = self.stamp
                if topic == CARDS:
                    self._fragments.pop(pk, None)
            if len(changed) > TRACKED_IDS:  # forget them: everything older is stale once
                changed.clear()
                self._floors[topic] = self.stamp

    def changed_at(self, topic: str, pk: int) -> int:
        """The stamp at the last change to `pk` under `topic` (what a copy made at an
        older stamp has missed), or at the last change the broker cannot place. For cards
        it is also a version."""
        return max(
            self._changed.get(topic, {}).get(pk, 0),
            self._floors.get(topic, 0),
            self._all_changed,
        )

    def topic_changed_at(self, topic: str) -> int:
        """The stamp at the last change to any id under `topic` (or to anything)."""
        return max(self._topics.get(topic, 0), self._all_changed)

    def _unchanged_since(self, stamp: int, key: Any) -> bool:
        """Has nothing `key` depends on changed after `stamp`? A `CacheKey` names what it
        depends on; any other key depends on every card (and on anything unknown)."""
        if not isinstance(key, CacheKey):
            return self.version <= stamp
        return (
            self._all_changed <= stamp
            and all(self.topic_changed_at(topic) <= stamp for topic in key.topics)
            and all(self.changed_at(CARDS, pk) <= stamp for pk in key.cards)
        )

    def _caching(self) -> bool:
        if not getattr(settings, "LIVE_GRID_CACHE", False) or connection.in_atomic_block:
            return False
        return self.listening()

    def listening(self) -> bool:
        """Is this process hearing every change? Caches are only as fresh as that: while the
        channel does not listen (starting, or reconnecting after a failure), nothing is
        cached, and what was cached before is dropped once it listens again."""
        self.start()
        return self._ready.is_set()

    def fragments(
        self,
        ids: list[int],
        render: Callable[[list[int]], dict[int, tuple[str, datetime | None]]],
    ) -> dict[int, str]:
        """The current fragment of each id (missing: not on any page now), from the
        per-fragment cache; `render(missing)` answers `{id: (html, valid until)}` for the
        rest. A change costs the changed fragments, never the others.
        """
        if not self._caching():
            return {pk: html for pk, (html, _) in render(ids).items()}
        stamp = self.stamp  # before rendering: a change meanwhile marks it stale
        now = timezone.now()
        found: dict[int, str] = {}
        missing: list[int] = []
        for pk in ids:
            entry = self._fragments.get(pk)
            if (
                entry is not None
                and entry[0] >= self.changed_at(CARDS, pk)
                and (entry[1] is None or now < entry[1])
            ):
                found[pk] = entry[2]
            else:
                missing.append(pk)
        if missing:
            latest = now + MAX_AGE
            for pk, (html, expires) in render(missing).items():
                found[pk] = html
                self._fragments[pk] = (stamp, min(expires or latest, latest), html)
        return found

    def cached(
        self,
        key: Any,
        build: Callable[[], tuple[Any, datetime | None]],
        *,
        across_changes: bool = False,
    ) -> Any:
        """`build()`'s value for `key`, kept until the next change that it depends on (a
        `CacheKey` names them; any change, for another key) or until the time it returns.
        For what depends on many fragments: a page's list of ids, a whole page's bytes.
        `across_changes`: kept until that time only, whatever changes (what may be a little
        late, and costs too much to build on every change)."""
        if not self._caching():
            return build()[0]
        stamp = self.stamp  # before building: a change meanwhile makes it stale
        entry = self._pages.get(key)
        if entry is not None and (entry[1] is None or timezone.now() < entry[1]):
            built, expires, value, checked = entry
            if across_changes or checked == stamp:
                return value
            if self._unchanged_since(built, key):
                # Checked once per change (of any topic), not once per request.
                self._pages[key] = (built, expires, value, stamp)
                return value
        value, expires = build()
        if len(self._pages) > PAGE_CACHE_SIZE:
            self._pages.clear()  # searches are unbounded; pages are cheap to build again
        latest = timezone.now() + MAX_AGE
        self._pages[key] = (stamp, min(expires or latest, latest), value, stamp)
        return value

    def snapshot(self) -> Snapshot:
        """Every fragment, cached until the next change or change by the clock.

        Only with LIVE_GRID_CACHE on, outside a transaction: the cache trusts that every
        change is published, which `make serve` guarantees but a test creating rows with
        factories does not.
        """
        version = self.version
        if not self._caching():
            return snapshot_build(version)
        current = self._snapshot
        if current is not None and current.fresh(version):
            return current
        snap = snapshot_build(version, cached=True)
        self._snapshot = snap
        return snap

    def cached_page(self, snap: Snapshot, render: Callable[[], str]) -> list[bytes]:
        """A page built from `snap` (the same for every first-time visitor), kept as long as
        it, as bytes split at the CSRF placeholder: `token.join(parts)` is the response."""
        page = self._page
        if page is not None and page[0] is snap:
            return page[1]
        parts = render().encode().split(CSRF_PLACEHOLDER.encode())
        self._page = (snap, parts)
        return parts

    # ---- subscribing

    def subscribe_sync(self) -> SyncSubscriber:
        self.start()
        sub = SyncSubscriber()
        with self._lock:
            self._sync.add(sub)
        if self.stopped:  # shutting down: the stream ends at once
            sub.offer(STOP)
        return sub

    def subscribe_async(self, loop: asyncio.AbstractEventLoop) -> AsyncSubscriber:
        """Call on `loop`'s thread, with the broker running (`start` may block)."""
        sub = AsyncSubscriber(loop)
        with self._lock:
            self._loops.setdefault(loop, set()).add(sub)
        if self.stopped:
            sub.offer(STOP)
        return sub

    def unsubscribe(self, sub: SyncSubscriber | AsyncSubscriber) -> None:
        with self._lock:
            if isinstance(sub, SyncSubscriber):
                self._sync.discard(sub)
            else:
                subs = self._loops.get(sub.loop)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._loops[sub.loop]

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._sync) + sum(len(s) for s in self._loops.values())

    def catch_up(self, last_id: str, ids: list[int] | None = None) -> bytes:
        """What a (re)connecting viewer missed since `last_id`: nothing, fragments, or a reset.

        Blocking (it may query): call it from a thread.
        """
        if not last_id:
            return b""
        boot, _, seq_text = last_id.partition(":")
        try:
            seq = int(seq_text)
        except ValueError:
            seq = -1
        with self._lock:
            ring = list(self._ring)
            current = self.seq
        known = boot == self.boot and 0 <= seq <= current
        if known and seq < current and (not ring or ring[0][0] > seq + 1):
            known = False  # the ring no longer holds everything after `seq`
        if not known:
            return self.reset_message(ids)
        missed = {pk for s, changed in ring if s > seq for pk in changed}
        if ids is not None:  # a page that names what it shows does nothing with the rest
            missed &= set(ids)
        if not missed:
            return b""
        return self._cards_message(sorted(missed), f"{self.boot}:{current}")

    def reset_message(self, ids: list[int] | None = None) -> bytes:
        """Everything a viewer needs to start over: with `ids` (what its page shows), their
        current fragments and which of them are gone; without, every fragment."""
        if ids is not None:
            last = self.last_id
            rendered = registry.source().render(ids)
            data: dict[str, Any] = {
                "html": {str(pk): for_stream(html) for pk, html in rendered.items()},
                "removed": [pk for pk in ids if pk not in rendered],
            }
            return encode("reset", data, last)
        snap = self.snapshot()
        html = {str(pk): for_stream(snap.html[pk]) for pk in snap.order}
        return encode("reset", {"html": html, "order": snap.order}, self.last_id)

    def _cards_message(self, ids: list[int], event_id: str) -> bytes:
        source = registry.source()
        if source.render_timed is not None:  # rendered once for the stream and the pages
            rendered = self.fragments(ids, source.render_timed)
        else:
            rendered = source.render(ids)
        html = {str(pk): for_stream(fragment) for pk, fragment in rendered.items()}
        removed = [pk for pk in ids if pk not in rendered]
        data: dict[str, Any] = {"html": html, "removed": removed}
        order = self._source_order(source)
        if order is not None:  # a source may leave it out (too many ids to send each time)
            data["order"] = order
        return encode("cards", data, event_id)

    def _source_order(self, source: registry.Source) -> list[int] | None:
        """`source.order()`; with the cache on and a source that names the topic its order
        depends on, read again only after a change under that topic (not for each change:
        at 100,000 products it is a query of its own)."""
        if source.order_topic is None or not getattr(settings, "LIVE_GRID_CACHE", False):
            return source.order()
        stamp = self.stamp
        cached = self._order
        if cached is not None and cached[0] >= self.topic_changed_at(source.order_topic):
            return cached[1]
        order = source.order()
        self._order = (stamp, order)
        return order

    # ---- the channel and the dispatcher thread

    def send(self, ids: list[int], topic: str = CARDS) -> None:
        if isinstance(self.channel, channel.InProcess):
            self.start()  # nobody else would read the in-process queue
        self.channel.send(ids, topic)

    def start(self) -> None:
        """Start the dispatcher (once); wait briefly until the channel listens, so that a
        change committed after this returns is seen."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="live-broker", daemon=True)
            self._thread.start()
        self._ready.wait(timeout=START_TIMEOUT)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.channel.listen(
                    ready=self._ready,
                    stop=self._stop,
                    wait=self._wait_seconds,
                    on_changes=self.receive,
                    on_idle=self._on_idle,
                    on_lost=self._lost,
                )
            except Exception:
                logger.exception("live: dispatcher failed; restarting in 1 s")
                # Until it listens again nothing is cached (`listening`), and notifications
                # may have been lost since the failure: everyone gets a fresh state.
                self._ready.clear()
                connection.close()
                self.invalidate(None)
                self._fan_out(RESET)
                self._stop.wait(1)
        connection.close()

    def _wait_seconds(self) -> float:
        if self._next_change is None:
            return 1.0
        delta = (self._next_change - timezone.now()).total_seconds()
        return min(max(delta, 0.0), 1.0)

    def _on_idle(self) -> None:
        """Fragments that change by the clock have no commit to announce them: do it here.

        A failure (the database away) is logged and looked at again at the next idle: the
        channel keeps listening, and the clock moves on only once a look succeeded."""
        try:
            self._clock_look()
        except Exception:
            self._failed("live: cannot look at the clock's changes")

    def _clock_look(self) -> None:
        now = timezone.now()
        due = self._next_change is not None and self._next_change <= now
        checked = self._clock_checked
        if not due and checked and (now - checked).total_seconds() < CLOCK_LOOK_SECONDS:
            return  # nothing changes before the next look (every dispatch refreshes it)
        if checked is not None and due:
            ids = registry.source().changed_between(checked, now)
            if ids:
                self.dispatch(ids)  # which moves the clock on
                return
        self._clock_checked = now
        self._refresh_next_change()

    def _lost(self) -> None:
        """The channel says changes were published that it can no longer tell: every cache
        and every viewer starts afresh."""
        logger.warning("live: changes were lost (the listener fell behind); starting afresh")
        self.invalidate(None)
        self._fan_out(RESET)

    def _failed(self, what: str) -> None:
        """Log a failure with its traceback, once a minute at most (it repeats each second
        while the database is away)."""
        now = time.monotonic()
        if now - self._failed_at > 60:
            self._failed_at = now
            logger.exception(what)

    def _refresh_next_change(self) -> None:
        self._next_change = registry.source().next_change()
        if self._clock_checked is None:
            self._clock_checked = timezone.now()

    def receive(self, changes: channel.Changes) -> None:
        """A burst from the channel: other topics invalidate caches, cards are dispatched."""
        for topic, ids in changes.items():
            if topic != CARDS:
                self.invalidate(ids, topic)
        if changes.get(CARDS):
            try:
                self.dispatch(changes[CARDS])
            except Exception:  # caches are invalidated already; viewers start afresh
                self._failed("live: cannot render a change for the stream")
                self._fan_out(RESET)

    def dispatch(self, ids: Iterable[int]) -> None:
        """Render the changed fragments once and hand the same bytes to every viewer."""
        ids = sorted(ids)
        self.invalidate(ids)
        with self._lock:
            self.seq += 1
            seq = self.seq
            self._ring.append((seq, tuple(ids)))
        message = self._cards_message(ids, f"{self.boot}:{seq}")
        self._clock_checked = timezone.now()
        self._refresh_next_change()
        self._fan_out(message)

    def _fan_out(self, message: Any) -> None:
        with self._lock:
            sync = list(self._sync)
            loops = {loop: list(subs) for loop, subs in self._loops.items()}
        for sub in sync:
            sub.offer(message)
        for loop, subs in loops.items():
            try:  # one wake-up per event loop, whatever the number of viewers on it
                loop.call_soon_threadsafe(offer_all, subs, message)
            except RuntimeError:  # that loop is closed
                with self._lock:
                    self._loops.pop(loop, None)

    def end_streams(self) -> None:
        """Shutting down: end every open stream (and any that opens from now on), stop
        dispatching. Does not wait."""
        self._stop.set()
        self._fan_out(STOP)

    def stop(self) -> None:
        """End every open stream and the dispatcher, and close its connection (server
        shutdown, test teardown). Blocking: up to a second while the channel notices."""
        self.end_streams()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=START_TIMEOUT)


_broker: Broker | None = None
_broker_pid = 0
_broker_lock = threading.Lock()


def get_broker() -> Broker:
    """This process's broker (a forked worker gets its own)."""
    global _broker, _broker_pid
    pid = os.getpid()
    if _broker is None or _broker_pid != pid:
        with _broker_lock:
            if _broker is None or _broker_pid != pid:
                _broker, _broker_pid = Broker(), pid
    return _broker
