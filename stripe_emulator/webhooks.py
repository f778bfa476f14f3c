"""Signing events and delivering them to one endpoint, as Stripe does.

One background thread sends deliveries in the order their events were
created; an API call only records the delivery and wakes the thread, so it
never waits on the receiver. A failed attempt (non-2xx, refused connection,
timeout) is retried on Stripe's test-mode schedule (three retries over hours,
STRIPE_TEST_RETRIES) or, for tests, a fast one (``retry_base * 2^n`` seconds up
to ``max_attempts``); then the delivery is marked failed (the dashboard can
resend it). Deliveries live in
the store, so the ones still pending when the process stops resume after a
restart.

``chaos`` imitates two things Stripe warns about: an event delivered twice and
events arriving out of order. The choice is made per event from
``chaos_seed`` and the event's sequence number, so a run can be repeated.

``drop`` imitates a third: an event that never arrives (Stripe gives up, the
endpoint was down for days, a proxy ate it). That fraction of events is
recorded as ``dropped`` and never sent nor retried; the event stays in the
API, where ``reconcile_stripe`` can find it. Chosen per event from the same
seed (independently of chaos), so a run can be repeated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from stripe_emulator.objects import public
from stripe_emulator.store import Store

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
MAX_DELAY = 300.0
# "In a sandbox, Stripe retries three times over a few hours" (Stripe's webhook docs; the
# intervals are not published): the emulator's choice, 10 min, 1 h, then 3 h.
STRIPE_TEST_RETRIES = (600.0, 3600.0, 10800.0)
# A held-back event waits for a later one to be sent first, but not forever.
HOLD_MAX = 1.0


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header: HMAC-SHA256 keyed with the whole secret."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Deliverer:
    """Queues and sends webhook deliveries; all state lives in the store."""

    def __init__(
        self,
        store: Store,
        *,
        forward_to: str,
        secret: str,
        retry_schedule: str = "stripe",
        retry_base: float = 0.5,
        max_attempts: int = 8,
        timeout: float = 10.0,
        chaos: bool = False,
        chaos_seed: int = 0,
        drop: float = 0.0,
    ) -> None:
        if not 0.0 <= drop <= 1.0:
            raise ValueError("drop is a rate between 0 and 1")
        self.store = store
        self.forward_to = forward_to
        self.secret = secret
        if retry_schedule not in ("stripe", "fast"):
            raise ValueError("retry_schedule is stripe or fast")
        self.retry_schedule = retry_schedule
        self.retry_base = retry_base
        # Stripe's schedule: the first attempt and one per retry delay.
        self.max_attempts = (
            len(STRIPE_TEST_RETRIES) + 1 if retry_schedule == "stripe" else max_attempts
        )
        self.timeout = timeout
        self.chaos = chaos
        self.chaos_seed = chaos_seed
        self.drop = drop
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- queueing (called under the store lock) ------------------------------

    def enqueue(self, event: dict[str, Any]) -> int:
        """Record a delivery for a new event; returns its `pending_webhooks`."""
        if not self.forward_to:
            return 0
        if self.drop and random.Random(f"drop:{self.chaos_seed}:{event['_seq']}").random() < (
            self.drop
        ):
            self.store.delivery_put(
                {
                    "event": event["id"],
                    "type": event["type"],
                    "seq": event["_seq"],
                    "status": "dropped",
                    "attempts": [],
                    "round_start": 0,
                    "queued_at": time.time(),
                    "next_attempt_at": time.time(),
                    "chaos_duplicate": False,
                    "chaos_hold": False,
                }
            )
            return 0
        duplicate = hold = False
        if self.chaos:
            rng = random.Random(f"{self.chaos_seed}:{event['_seq']}")
            duplicate = rng.random() < 1 / 3
            hold = rng.random() < 1 / 4
        self.store.delivery_put(
            {
                "event": event["id"],
                "type": event["type"],
                "seq": event["_seq"],
                "status": "pending",
                "attempts": [],
                "round_start": 0,
                "queued_at": time.time(),
                "next_attempt_at": time.time(),
                "chaos_duplicate": duplicate,
                "chaos_hold": hold,
            }
        )
        self._wake.set()
        return 1

    def resend(self, event_id: str) -> bool:
        with self.store.lock:
            event = self.store.get("events", event_id)
            if event is None or not self.forward_to:
                return False
            delivery = self.store.delivery_get(event_id)
            if delivery is None:
                self.enqueue(event)
            else:
                delivery.update(
                    status="pending",
                    round_start=len(delivery["attempts"]),
                    next_attempt_at=time.time(),
                    chaos_hold=False,
                )
                self.store.delivery_put(delivery)
            event["pending_webhooks"] = 1
            self.store.put("events", event)
            self.store.save()
        self._wake.set()
        return True

    # -- the worker ----------------------------------------------------------

    def start(self) -> None:
        if not self.forward_to:
            return
        with self.store.lock:
            # Whatever was pending when the process stopped is due now: a restart
            # is usually a developer fixing things, who should not wait a backoff.
            for delivery in self.store.deliveries(status="pending"):
                delivery["next_attempt_at"] = min(delivery["next_attempt_at"], time.time())
                self.store.delivery_put(delivery)
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            job, wait = self._next_due()
            if job is None:
                self._wake.wait(timeout=wait)
                self._wake.clear()
                continue
            self._attempt(job)

    def _next_due(self) -> tuple[dict[str, Any] | None, float]:
        """The oldest due delivery, or None and how long to sleep."""
        now = time.time()
        with self.store.lock:
            wait = 1.0
            for delivery in self.store.deliveries(status="pending"):
                if delivery["next_attempt_at"] > now:
                    wait = min(wait, delivery["next_attempt_at"] - now)
                    continue
                if self._held(delivery, now):
                    wait = min(wait, 0.05)
                    continue
                return delivery, 0.0
            return None, max(wait, 0.01)

    def _held(self, delivery: dict[str, Any], now: float) -> bool:
        """Chaos: let a later event go first before sending this one."""
        if not delivery["chaos_hold"] or delivery["attempts"]:
            return False
        if now - delivery["queued_at"] > HOLD_MAX:
            return False
        return not self.store.delivery_attempted_after(delivery["seq"])

    def _attempt(self, job: dict[str, Any]) -> None:
        with self.store.lock:
            event = self.store.get("events", job["event"])
            payload = json.dumps(public(event), indent=2).encode("utf-8") if event else b""
        if event is None:
            self._finish(job["event"], "failed")
            return
        attempt = self._post(payload)
        ok = attempt["status"] is not None and 200 <= attempt["status"] < 300
        if ok and self.chaos and job["chaos_duplicate"]:
            duplicate = self._post(payload)
            duplicate["chaos_duplicate"] = True
            self._record(job["event"], attempt, ok)
            with self.store.lock:
                delivery = self._delivery(job["event"])
                delivery["attempts"].append(duplicate)
                delivery["chaos_duplicate"] = False
                self.store.delivery_put(delivery)
            return
        self._record(job["event"], attempt, ok)

    def _post(self, payload: bytes) -> dict[str, Any]:
        timestamp = int(time.time())
        request = urllib.request.Request(
            self.forward_to,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(payload, self.secret, timestamp),
                "User-Agent": USER_AGENT,
                "Cache-Control": "no-cache",
            },
        )
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = "timeout" if isinstance(reason, TimeoutError) else str(reason)
        return {
            "at": timestamp,
            "status": status,
            "error": error,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }

    def _delivery(self, event_id: str) -> dict[str, Any]:
        delivery = self.store.delivery_get(event_id)
        assert delivery is not None, event_id
        return delivery

    def _record(self, event_id: str, attempt: dict[str, Any], ok: bool) -> None:
        with self.store.lock:
            delivery = self._delivery(event_id)
            delivery["attempts"].append(attempt)
            tries = len(delivery["attempts"]) - delivery["round_start"]
            if not ok and tries < self.max_attempts:
                delivery["next_attempt_at"] = time.time() + self.retry_delay(tries)
            self.store.delivery_put(delivery)
            if ok:
                self._finish(event_id, "delivered")
            elif tries >= self.max_attempts:
                self._finish(event_id, "failed")

    def retry_delay(self, tries: int) -> float:
        """Seconds before the next attempt, after `tries` failed ones."""
        if self.retry_schedule == "stripe":
            return STRIPE_TEST_RETRIES[tries - 1]
        return min(self.retry_base * 2 ** (tries - 1), MAX_DELAY)

    def _finish(self, event_id: str, status: str) -> None:
        with self.store.lock:
            delivery = self._delivery(event_id)
            delivery["status"] = status
            self.store.delivery_put(delivery)
            event = self.store.get("events", event_id)
            if event is not None:
                event["pending_webhooks"] = 0
                self.store.put("events", event)

    # -- inspection ------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            "pending": 0,
            "delivered": 0,
            "failed": 0,
            "dropped": 0,
            **self.store.delivery_counts(),
        }

    def flush(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until nothing is pending (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while True:
            counts = self.counts()
            if counts["pending"] == 0 or time.monotonic() >= deadline:
                return {**counts, "flushed": counts["pending"] == 0}
            # A short server-side poll; the worker owns the queue.
            time.sleep(0.01)

    def for_events(self, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The deliveries of these events, by event id (events without one are left out)."""
        return {d["event"]: d for d in self.store.deliveries(event_ids=event_ids)}

    def listing(self, event_id: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.deliveries(event_ids=[event_id] if event_id else None)
        return [
            {
                "event": d["event"],
                "type": d["type"],
                "status": d["status"],
                "attempts": list(d["attempts"]),
                "next_attempt_at": d["next_attempt_at"] if d["status"] == "pending" else None,
            }
            for d in rows
        ]
