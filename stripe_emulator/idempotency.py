"""Idempotency keys, as Stripe's API v1 keeps them.

"Stripe saves the status code and body of the first request made with a given
idempotency key after endpoint execution begins. Retries with the same key
return the saved response, including 500 errors." Keys are kept at least 24
hours (IDEMPOTENCY_TTL; in the store's `idempotency` table), scoped per API key:

- the same key and parameters: the stored answer, whatever it was (a 200, a
  402, a 400 from the endpoint, a 500), with `Idempotent-Replayed: true`;
- the same key with other parameters or on another endpoint: 400
  `idempotency_error`, and nothing runs;
- a request that fails validation (the SDK types' check in schema.py, before
  the endpoint starts) stores nothing, so the same key can be used again;
- the same key while the first request is still running: 409, stored
  nothing. The SDK retries a 409 (`_http_client._should_retry`) and, once its
  retries are used up, raises `stripe.APIError` (http_status 409), not
  `stripe.IdempotencyError` (which it raises for a 400 `idempotency_error`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from stripe_emulator.params import ApiError
from stripe_emulator.store import Store

# What the endpoint answered: (status, body).
Answer = tuple[int, Any]
# Stripe keeps idempotency keys for at least 24 hours.
IDEMPOTENCY_TTL = 24 * 3600


def run_endpoint(endpoint: Callable[[], Any]) -> Answer:
    """The endpoint's answer, an error it raised included (it started: Stripe keeps it)."""
    try:
        return HTTPStatus.OK, endpoint()
    except ApiError as exc:
        return exc.status, exc.body()


class Idempotency:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._running: set[str] = set()
        self._running_lock = threading.Lock()

    def run(
        self,
        *,
        api_key: str,
        key: str,
        method: str,
        path: str,
        params: dict[str, Any],
        validate: Callable[[], None],
        endpoint: Callable[[], Any],
    ) -> tuple[int, Any, bool]:
        """(status, body, replayed) for a request with an idempotency key."""
        fingerprint = hashlib.sha256(
            json.dumps([method, path, params], sort_keys=True).encode()
        ).hexdigest()
        scope = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        slot = f"{scope}:{key}"
        with self._running_lock:
            if slot in self._running:
                raise ApiError(
                    HTTPStatus.CONFLICT,
                    "There is currently another in-progress request using this Idempotent Key "
                    "(that probably means you submitted twice, and the other request is still "
                    f"going through): {key}. Please try again later.",
                    type="idempotency_error",
                )
            record = self._get(scope, key)
            if record is None:
                self._running.add(slot)
        if record is not None:
            self._check_same(record, key, path, fingerprint)
            return record["status"], record["body"], True
        try:
            validate()  # raises: nothing stored, the key stays free
            status, body = run_endpoint(endpoint)
            with self.store.lock:
                self._put(
                    scope,
                    key,
                    {"fingerprint": fingerprint, "path": path, "status": status, "body": body},
                )
            return status, body, False
        finally:
            with self._running_lock:
                self._running.discard(slot)

    def _get(self, scope: str, key: str) -> dict[str, Any] | None:
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT record FROM idempotency WHERE key = ? AND created >= ?",
                (f"{scope}:{key}", time.time() - IDEMPOTENCY_TTL),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def _put(self, scope: str, key: str, record: dict[str, Any]) -> None:
        now = time.time()
        with self.store.lock:
            conn = self.store.conn
            conn.execute("DELETE FROM idempotency WHERE created < ?", (now - IDEMPOTENCY_TTL,))
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (key, created, record) VALUES (?, ?, ?)",
                (f"{scope}:{key}", now, json.dumps({**record, "created": now})),
            )

    @staticmethod
    def _check_same(record: dict[str, Any], key: str, path: str, fingerprint: str) -> None:
        first = record.get("path", path)
        if first != path:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Keys for idempotent requests can only be used for the same endpoint "
                f"they were first used for ('{first}' vs '{path}'). Try using a key "
                f"other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        if record["fingerprint"] != fingerprint:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Keys for idempotent requests can only be used with the same "
                "parameters they were first used with. Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
