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

Topics. A change to `cards` (the default) is rendered and streamed; a change under any
other topic (cart ids under `carts`, say) is only told to the listeners
(`live.registry.listen`: the page caches, `pagecache`), as every change is: a publish in
this process at once, before it is sent; a change from the channel before it is rendered;
and "anything" (ids None) when the channel failed or fell behind. live keeps no copy of
anything: what it renders comes from the registered source, which may keep its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from live import channel, registry
from live.registry import CSRF_PLACEHOLDER
from live.sse import encode
from live.subscribers import RESET, STOP, AsyncSubscriber, SyncSubscriber, offer_all

logger = logging.getLogger(__name__)

RING_SIZE = 512  # messages remembered for reconnecting viewers
START_TIMEOUT = 5.0  # seconds `start` waits for the channel to listen
CLOCK_LOOK_SECONDS = 30.0  # how often the dispatcher re-reads when the clock next changes
CARDS = channel.CARDS


def for_stream(html: str) -> str:
    """A shared fragment as the stream sends it: with no token (the page's script adds its own)."""
    return html.replace(CSRF_PLACEHOLDER, "")


class Broker:
    def __init__(self) -> None:
        self.boot = secrets.token_hex(4)
        self.seq = 0
        self.channel = channel.for_database()
        self._lock = threading.Lock()
        self._ring: deque[tuple[int, tuple[int, ...]]] = deque(maxlen=RING_SIZE)
        self._sync: set[SyncSubscriber] = set()
        self._loops: dict[asyncio.AbstractEventLoop, set[AsyncSubscriber]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._next_change: datetime | None = None
        self._clock_checked: datetime | None = None
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

    def listening(self) -> bool:
        """Is this process hearing every change? A copy kept by a listener is only as fresh
        as that: while the channel does not listen (starting, or reconnecting after a
        failure) nothing should be kept, and listeners are told that anything may have
        changed before it listens again."""
        self.start()
        return self._ready.is_set()

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
        last = self.last_id
        page = registry.source().page()
        html = {str(pk): for_stream(page.html[pk]) for pk in page.order}
        return encode("reset", {"html": html, "order": page.order}, last)

    def _cards_message(self, ids: list[int], event_id: str) -> bytes:
        source = registry.source()
        rendered = source.render(ids)
        html = {str(pk): for_stream(fragment) for pk, fragment in rendered.items()}
        removed = [pk for pk in ids if pk not in rendered]
        data: dict[str, Any] = {"html": html, "removed": removed}
        order = source.order()
        if order is not None:  # a source may leave it out (too many ids to send each time)
            data["order"] = order
        return encode("cards", data, event_id)

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
                registry.changed(None, CARDS)
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
        registry.changed(None, CARDS)
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
        """A burst from the channel: other topics are only told, cards are dispatched."""
        for topic, ids in changes.items():
            if topic != CARDS:
                registry.changed(ids, topic)
        if changes.get(CARDS):
            try:
                self.dispatch(changes[CARDS])
            except Exception:  # listeners were told already; viewers start afresh
                self._failed("live: cannot render a change for the stream")
                self._fan_out(RESET)

    def dispatch(self, ids: Iterable[int]) -> None:
        """Render the changed fragments once and hand the same bytes to every viewer."""
        ids = sorted(ids)
        registry.changed(ids, CARDS)  # before rendering: no listener's copy is used
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
