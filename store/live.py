"""Publishing catalog and stock changes to open browsers (the `/live/` stream).

Callers inside a transaction use `publish_on_commit`: nothing is sent for a change that is
rolled back, and the message goes out only once the new state is visible to readers.

The channel. On PostgreSQL `publish` runs `pg_notify('amazin_live', '<ids>')`; every server
process holds ONE listening connection (the broker's dispatcher thread), so a change made in
any process or machine reaches the viewers connected to every other. On SQLite (one process)
the ids go straight to this process's dispatcher.

The fan-out. The dispatcher coalesces what arrived together, renders each changed card ONCE
with the same fragment the pages render (`store/includes/_product_card.html`), encodes one
SSE message and hands the same bytes to every subscriber: one hop per event loop (the ASGI
stream, `amazin.live_asgi`) or a bounded `queue.Queue` per viewer (the WSGI view used by
`make run`). A subscriber whose queue is full loses its backlog and gets a fresh state
instead (a `reset`), so a slow viewer never blocks the others or the publisher.

Catching up. Each message has an id `<boot>:<seq>` (this process's run and a counter). A
browser that reconnects sends it back (`Last-Event-ID`, or `?last=` as embedded in the page):
if this process still remembers everything after it, the viewer gets the current cards of
the products it missed; otherwise (another process, too old) a `reset` with every visible
card.

The shared fragments never carry a user's CSRF token: they are rendered with a placeholder,
which the grid page replaces with the request's token and the stream blanks out (live.js
fills it in from the page).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.template.loader import render_to_string
from django.utils import timezone

logger = logging.getLogger(__name__)

CHANNEL = "amazin_live"
HEARTBEAT_SECONDS = 15.0
QUEUE_SIZE = 32  # messages a viewer may lag behind before it gets a reset instead
RING_SIZE = 512  # messages remembered for reconnecting viewers
NOTIFY_CHUNK = 900  # ids per pg_notify: well under PostgreSQL's 8000-byte payload limit
RETRY_MS = 2000
CSRF_PLACEHOLDER = "LIVECSRFTOKENPLACEHOLDER"
CARD_TEMPLATE = "store/includes/_product_card.html"
HEARTBEAT = b": keep-alive\n\n"


def publish(product_ids: Iterable[int]) -> None:
    """Tell every listener that these products changed (stock, price, name, visibility).

    A failure here is logged, never raised: the change is committed already, and viewers
    catch up on their next reconnect.
    """
    ids = sorted({int(i) for i in product_ids})
    if not ids:
        return
    logger.debug("products changed: %s", ids)
    broker = get_broker()
    broker.invalidate()
    try:
        if uses_notify():
            with connection.cursor() as cursor:
                for start in range(0, len(ids), NOTIFY_CHUNK):
                    payload = ",".join(map(str, ids[start : start + NOTIFY_CHUNK]))
                    cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
        else:
            broker.submit(ids)
    except Exception:
        logger.exception("live: could not publish %s", ids)


def publish_on_commit(product_ids: Iterable[int]) -> None:
    ids = list(product_ids)
    if ids:
        transaction.on_commit(lambda: publish(ids))


def uses_notify() -> bool:
    return connections["default"].vendor == "postgresql"


# -- rendering -------------------------------------------------------------------------------


def visible_products(ids: Iterable[int] | None = None):  # type: ignore[no-untyped-def]
    """Visible products with `reserved` and `next_expiry` (earliest live reservation end).

    One query, like the grid's.
    """
    from store.models import Product

    products = Product.objects.visible().with_reserved().with_next_expiry()
    if ids is not None:
        products = products.filter(pk__in=list(ids))
    # Meta.ordering does not apply to aggregating queries: say it.
    return products.order_by("name", "id")


_INDENT = re.compile(r"\n\s+")


def render_card(product: Any) -> str:
    """The grid card, as the page renders it, with a placeholder for the CSRF token.

    Indentation is dropped (a newline stays wherever there was whitespace, so the page
    renders the same): it is a third of the bytes every viewer downloads.
    """
    html = render_to_string(CARD_TEMPLATE, {"product": product, "csrf_token": CSRF_PLACEHOLDER})
    return _INDENT.sub("\n", html).strip()


@dataclass(frozen=True)
class Snapshot:
    """Every visible card in grid order, valid until `expires` (a reservation runs out)."""

    version: int
    order: list[int]
    cards: dict[int, str]
    expires: datetime | None
    body: str = field(repr=False, default="")
    cached: bool = False

    def fresh(self, version: int) -> bool:
        return self.version == version and (self.expires is None or timezone.now() < self.expires)


def snapshot_build(version: int, *, cached: bool = False) -> Snapshot:
    products = list(visible_products())
    cards = {p.pk: render_card(p) for p in products}
    expiries = [p.next_expiry for p in products if p.next_expiry is not None]
    return Snapshot(
        version=version,
        order=[p.pk for p in products],
        cards=cards,
        expires=min(expiries, default=None),
        body="".join(cards.values()),
        cached=cached,
    )


def sse(event: str, data: dict[str, Any], event_id: str = "") -> bytes:
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def _for_stream(html: str) -> str:
    return html.replace(CSRF_PLACEHOLDER, "")


# -- subscribers -----------------------------------------------------------------------------

RESET = object()  # queued instead of a backlog the viewer could not keep up with


class SyncSubscriber:
    """A viewer served by a thread (the WSGI view): a bounded `queue.Queue`."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_SIZE)

    def offer(self, message: bytes) -> None:
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            _drain(self.queue)
            self.queue.put_nowait(RESET)


class AsyncSubscriber:
    """A viewer served by an event loop (the ASGI stream): a bounded `asyncio.Queue`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def offer(self, message: bytes) -> None:  # on the loop's thread
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            _drain(self.queue)
            self.queue.put_nowait(RESET)


def offer_stop(sub: AsyncSubscriber) -> None:
    """Wake the stream of a viewer that went away, whatever its queue holds."""
    _drain(sub.queue)
    sub.queue.put_nowait(None)


def _drain(q: Any) -> None:
    while True:
        try:
            q.get_nowait()
        except (queue.Empty, asyncio.QueueEmpty):
            return


# -- the broker: one per process -------------------------------------------------------------


class Broker:
    def __init__(self) -> None:
        self.boot = secrets.token_hex(4)
        self.seq = 0
        # Bumped by every local publish (at once) and every message dispatched: cached
        # renderings of an older version are stale.
        self.version = 0
        self._lock = threading.Lock()
        self._ring: deque[tuple[int, tuple[int, ...]]] = deque(maxlen=RING_SIZE)
        self._sync: set[SyncSubscriber] = set()
        self._loops: dict[asyncio.AbstractEventLoop, set[AsyncSubscriber]] = {}
        self._inbox: queue.Queue[list[int]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._snapshot: Snapshot | None = None
        self._page: tuple[Snapshot, list[bytes]] | None = None
        self._next_expiry: datetime | None = None
        self._expiry_checked: datetime | None = None

    # ---- state shared with pages

    @property
    def last_id(self) -> str:
        return f"{self.boot}:{self.seq}"

    def invalidate(self) -> None:
        with self._lock:
            self.version += 1

    def snapshot(self) -> Snapshot:
        """Every visible card, cached until the next change or reservation expiry.

        Only with LIVE_GRID_CACHE on, outside a transaction: the cache trusts that every
        change is published, which `make serve` guarantees but a test creating rows with
        factories does not.
        """
        version = self.version
        if not getattr(settings, "LIVE_GRID_CACHE", False) or connection.in_atomic_block:
            return snapshot_build(version)
        self.start()  # the cache is only as fresh as this process's dispatcher
        current = self._snapshot
        if current is not None and current.fresh(version):
            return current
        snap = snapshot_build(version, cached=True)
        self._snapshot = snap
        return snap

    def cached_page(self, snap: Snapshot, render: Callable[[], str]) -> list[bytes]:
        """A page built from `snap` (the grid for first-time visitors), kept as long as it,
        as bytes split at the CSRF placeholder: `token.join(parts)` is the response."""
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
        return sub

    def subscribe_async(self, loop: asyncio.AbstractEventLoop) -> AsyncSubscriber:
        self.start()
        sub = AsyncSubscriber(loop)
        with self._lock:
            self._loops.setdefault(loop, set()).add(sub)
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

    def catch_up(self, last_id: str) -> bytes:
        """What a (re)connecting viewer missed since `last_id`: nothing, cards, or a reset.

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
            return self.reset_message()
        missed = {pk for s, ids in ring if s > seq for pk in ids}
        if not missed:
            return b""
        return self._cards_message(sorted(missed), f"{self.boot}:{current}")

    def reset_message(self) -> bytes:
        snap = self.snapshot()
        cards = {str(pk): _for_stream(html) for pk, html in snap.cards.items()}
        return sse("reset", {"html": cards, "order": snap.order}, self.last_id)

    def _cards_message(self, ids: list[int], event_id: str) -> bytes:
        from store.models import Product

        products = {p.pk: p for p in visible_products(ids)}
        html = {str(pk): _for_stream(render_card(p)) for pk, p in products.items()}
        removed = [pk for pk in ids if pk not in products]
        order = list(Product.objects.visible().order_by("name", "id").values_list("pk", flat=True))
        return sse("cards", {"html": html, "removed": removed, "order": order}, event_id)

    # ---- dispatching

    def submit(self, ids: list[int]) -> None:
        """In-process channel (SQLite): hand ids to the dispatcher."""
        self.start()
        self._inbox.put(list(ids))

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="live-broker", daemon=True)
            self._thread.start()
        # Wait (briefly) for LISTEN, so that a change committed after this returns is seen.
        self._ready.wait(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if uses_notify():
                    self._listen_postgres()
                else:
                    self._listen_local()
            except Exception:
                logger.exception("live: dispatcher failed; restarting in 1 s")
                connection.close()
                # Notifications may have been lost meanwhile: everyone gets a fresh state.
                self._broadcast_reset()
                self._stop.wait(1)
        connection.close()

    def _listen_local(self) -> None:
        self._ready.set()
        while not self._stop.is_set():
            try:
                ids = set(self._inbox.get(timeout=self._wait_seconds()))
            except queue.Empty:
                self._expire_reservations()
                continue
            while True:  # coalesce what is queued already
                try:
                    ids.update(self._inbox.get_nowait())
                except queue.Empty:
                    break
            self.dispatch(ids)

    def _listen_postgres(self) -> None:
        import psycopg

        params = connections["default"].get_connection_params()
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._ready.set()
            while not self._stop.is_set():
                ids: set[int] = set()
                for note in conn.notifies(timeout=self._wait_seconds(), stop_after=1):
                    ids.update(_parse_ids(note.payload))
                if not ids:
                    self._expire_reservations()
                    continue
                for note in conn.notifies(timeout=0.002):  # coalesce a burst
                    ids.update(_parse_ids(note.payload))
                self.dispatch(ids)

    def _wait_seconds(self) -> float:
        if self._next_expiry is None:
            return 1.0
        delta = (self._next_expiry - timezone.now()).total_seconds()
        return min(max(delta, 0.0), 1.0)

    def _expire_reservations(self) -> None:
        """Reservations end by the clock, with no commit to announce it: announce it here."""
        from store.models import reservations_ended_product_ids

        now = timezone.now()
        due = self._next_expiry is not None and self._next_expiry <= now
        if not due and self._expiry_checked and (now - self._expiry_checked).total_seconds() < 30:
            return  # nothing ends before the next look (every change refreshes it anyway)
        since = self._expiry_checked
        self._expiry_checked = now
        if since is not None and self._next_expiry is not None and self._next_expiry <= now:
            ids = reservations_ended_product_ids(since=since, until=now)
            if ids:
                self.dispatch(ids)
                return
        self._refresh_next_expiry()

    def _refresh_next_expiry(self) -> None:
        from store.models import reservations_next_expiry

        self._next_expiry = reservations_next_expiry()
        if self._expiry_checked is None:
            self._expiry_checked = timezone.now()

    def dispatch(self, ids: Iterable[int]) -> None:
        """Render the changed cards once and hand the same bytes to every viewer."""
        ids = sorted(ids)
        self.invalidate()
        with self._lock:
            self.seq += 1
            seq = self.seq
            self._ring.append((seq, tuple(ids)))
        message = self._cards_message(ids, f"{self.boot}:{seq}")
        self._expiry_checked = timezone.now()
        self._refresh_next_expiry()
        self._fan_out(message)

    def _fan_out(self, message: Any) -> None:
        with self._lock:
            sync = list(self._sync)
            loops = {loop: list(subs) for loop, subs in self._loops.items()}
        for sub in sync:
            sub.offer(message)
        for loop, subs in loops.items():
            try:  # one wake-up per event loop, whatever the number of viewers on it
                loop.call_soon_threadsafe(_offer_all, subs, message)
            except RuntimeError:  # that loop is closed
                with self._lock:
                    self._loops.pop(loop, None)

    def _broadcast_reset(self) -> None:
        self.invalidate()
        self._fan_out(RESET)

    def stop(self) -> None:
        """End the dispatcher and close its connections (server shutdown, test teardown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _offer_all(subs: list[AsyncSubscriber], message: Any) -> None:
    for sub in subs:
        sub.offer(message)


def _parse_ids(payload: str) -> list[int]:
    return [int(part) for part in payload.split(",") if part.strip().isdigit()]


_broker: Broker | None = None
_broker_pid = 0
_broker_lock = threading.Lock()


def get_broker() -> Broker:
    """This process's broker (a forked worker gets its own)."""
    global _broker, _broker_pid
    pid = os.getpid()
    if _broker is None or _broker_pid != pid or _broker._stop.is_set():
        with _broker_lock:
            if _broker is None or _broker_pid != pid:
                _broker, _broker_pid = Broker(), pid
    return _broker


# -- the stream, for a thread (WSGI: `make run`, tests) ----------------------------------------


def stream_sync(last_id: str) -> Iterator[bytes]:
    """SSE for one viewer on one thread. Development and tests; production uses live_asgi."""
    broker = get_broker()
    sub = broker.subscribe_sync()
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        backlog = broker.catch_up(last_id)
        if backlog:
            yield backlog
        connections.close_all()  # this thread holds no connection while it waits
        while True:
            try:
                message = sub.queue.get(timeout=HEARTBEAT_SECONDS)
            except queue.Empty:
                yield HEARTBEAT
                continue
            if message is RESET:
                yield broker.reset_message()
                connections.close_all()
            else:
                yield message
    finally:
        broker.unsubscribe(sub)


def now_ms() -> int:
    return int(time.time() * 1000)
