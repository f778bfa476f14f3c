"""Faults tests ask for: the next N requests to an endpoint fail with a 500, or are slow.

Stripe has no such thing; tests need it to see what the shop does when Stripe
fails *after* it acted (the money moved, the answer was a 500) or before, and
when a second request with the same idempotency key comes while the first is
still running (Stripe answers 409). A fault is set through
``POST /_emulator/faults`` (testing.py) and kept in the store, so it survives
a restart like the rest of the state:

- ``when=after``: the endpoint runs (its objects are made, its events sent),
  then the answer is a 500 ``api_error``;
- ``when=before``: the answer is a 500 and the endpoint does nothing;
- ``when=delay``: the endpoint waits ``seconds`` before it runs (outside the
  store lock, so other requests go on), for racing two requests.

The 500 counts as the endpoint's answer: under an idempotency key it is
stored and replayed, as Stripe replays a 500 (idempotency.py). A request that
fails validation never reaches the endpoint, so it does not use up a fault.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from stripe_emulator.params import ApiError
from stripe_emulator.store import Store

WHEN = ("after", "before", "delay")
MAX_DELAY = 30.0


def server_error() -> ApiError:
    return ApiError(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "An unknown error occurred (a fault the test asked the emulator for).",
        type="api_error",
    )


class Faults:
    """The pending faults, in the store's `meta` table as one JSON list."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Whether any fault is set: every API request asks, most when none is.
        self._any = bool(self.pending())

    def pending(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return list(json.loads(self.store.get_meta("faults") or "[]"))

    def add(self, *, method: str, path: str, when: str, count: int, seconds: float) -> list[Any]:
        if when not in WHEN:
            raise ApiError(HTTPStatus.BAD_REQUEST, "when is after, before or delay.", param="when")
        if not path.startswith("/v1/"):
            raise ApiError(HTTPStatus.BAD_REQUEST, "path is an API path (/v1/...).", param="path")
        if count < 1 or not 0 <= seconds <= MAX_DELAY:
            raise ApiError(HTTPStatus.BAD_REQUEST, "count >= 1, 0 <= seconds <= 30.")
        with self.store.lock:
            faults = self.pending()
            faults.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "when": when,
                    "remaining": count,
                    "seconds": seconds,
                }
            )
            self.store.set_meta("faults", json.dumps(faults))
            self._any = True
            return faults

    def clear(self) -> None:
        with self.store.lock:
            self.store.set_meta("faults", "[]")
            self._any = False

    def take(self, method: str, path: str, template: str) -> dict[str, Any] | None:
        """Use up one fault for this request (its path or its route's template), if any."""
        if not self._any:
            return None
        with self.store.lock:
            faults = self.pending()
            for fault in faults:
                if fault["method"] == method and fault["path"] in (path, template):
                    fault["remaining"] -= 1
                    kept = [f for f in faults if f["remaining"] > 0]
                    self.store.set_meta("faults", json.dumps(kept))
                    self._any = bool(kept)
                    return fault
            return None

    def run(self, method: str, path: str, template: str, endpoint: Callable[[], Any]) -> Any:
        """Run the endpoint with whatever fault is set for it."""
        fault = self.take(method, path, template)
        if fault is None:
            return endpoint()
        if fault["when"] == "before":
            raise server_error()
        if fault["when"] == "delay":
            time.sleep(float(fault["seconds"]))
            return endpoint()
        endpoint()
        raise server_error()
