"""All emulator state in one JSON document, saved atomically after each change.

The server is threaded, so every read and write happens under ``Store.lock``
(re-entrant: an API operation may call others). The document is small enough
for a development tool that rewriting it whole is simpler than anything
incremental, and ``os.replace`` means a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

COLLECTIONS = (
    "products",
    "prices",
    "checkout_sessions",
    "payment_intents",
    "charges",
    "refunds",
    "events",
)

# Stripe keeps idempotency keys for at least 24 hours.
IDEMPOTENCY_TTL = 24 * 3600

_ALPHABET = string.ascii_letters + string.digits


class BadCursor(LookupError):
    """A `starting_after` / `ending_before` id that is not in the list."""


def matches(obj: dict[str, Any], filters: list[tuple[str, str, Any]]) -> bool:
    """Whether an object passes every (field, op, value) filter of a list."""
    for field, op, value in filters:
        actual = obj.get(field)
        if op == "eq":
            ok = actual == value
        elif op == "in":
            ok = actual in value
        elif op == "prefix":
            ok = isinstance(actual, str) and actual.startswith(value)
        elif op == "gt":
            ok = actual > value
        elif op == "gte":
            ok = actual >= value
        elif op == "lt":
            ok = actual < value
        elif op == "lte":
            ok = actual <= value
        else:
            raise ValueError(f"unknown filter op {op!r}")
        if not ok:
            return False
    return True


def new_id(prefix: str, length: int = 24) -> str:
    """An id shaped like Stripe's: a type prefix and random alphanumerics."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class Store:
    """Objects by collection and id, plus events, idempotency and deliveries."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.state: dict[str, Any] = self._empty()
        if path is not None and path.exists():
            with path.open(encoding="utf-8") as fh:
                loaded = json.load(fh)
            self.state.update(loaded)
            for name in COLLECTIONS:
                self.state.setdefault(name, {})

    @staticmethod
    def _empty() -> dict[str, Any]:
        state: dict[str, Any] = {name: {} for name in COLLECTIONS}
        state.update({"seq": 0, "clock_offset": 0, "idempotency": {}, "deliveries": {}})
        return state

    # -- clock -------------------------------------------------------------

    def now(self) -> int:
        """Emulated wall clock in unix seconds; tests may move it forward."""
        return int(time.time()) + int(self.state["clock_offset"])

    def advance_clock(self, seconds: int) -> int:
        with self.lock:
            self.state["clock_offset"] = int(self.state["clock_offset"]) + seconds
            self.save()
            return self.now()

    # -- objects -----------------------------------------------------------

    def next_seq(self) -> int:
        """A strictly increasing number that breaks ties between equal `created`."""
        self.state["seq"] += 1
        return int(self.state["seq"])

    def get(self, collection: str, obj_id: str) -> dict[str, Any] | None:
        return self.state[collection].get(obj_id)

    def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        table = self.state[collection]
        if obj["id"] not in table:
            obj.setdefault("_seq", self.next_seq())
        table[obj["id"]] = obj
        return obj

    def delete(self, collection: str, obj_id: str) -> None:
        self.state[collection].pop(obj_id, None)

    def all(self, collection: str) -> list[dict[str, Any]]:
        """Newest first, as Stripe lists: by `created` desc, then insertion desc."""
        items = list(self.state[collection].values())
        items.sort(key=lambda o: (o.get("created", 0), o.get("_seq", 0)), reverse=True)
        return items

    def find(
        self, collection: str, filters: list[tuple[str, str, Any]], limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The objects that pass the filters, newest first."""
        return [o for o in self.all(collection) if matches(o, filters)][:limit]

    def page(
        self,
        collection: str,
        filters: list[tuple[str, str, Any]],
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of a newest-first list and whether there is more past it."""
        items = self.find(collection, filters)
        ids = [item["id"] for item in items]
        if starting_after:
            if starting_after not in ids:
                raise BadCursor(starting_after)
            start = ids.index(starting_after) + 1
            return items[start : start + limit], start + limit < len(items)
        if ending_before:
            if ending_before not in ids:
                raise BadCursor(ending_before)
            end = ids.index(ending_before)
            begin = max(0, end - limit)
            return items[begin:end], begin > 0
        return items[:limit], len(items) > limit

    # -- idempotency -------------------------------------------------------

    def idempotency_get(self, scope: str, key: str) -> dict[str, Any] | None:
        record = self.state["idempotency"].get(f"{scope}:{key}")
        if record is None or record["created"] < time.time() - IDEMPOTENCY_TTL:
            return None
        return record

    def idempotency_put(self, scope: str, key: str, record: dict[str, Any]) -> None:
        cutoff = time.time() - IDEMPOTENCY_TTL
        table = self.state["idempotency"]
        for stale in [k for k, v in table.items() if v["created"] < cutoff]:
            del table[stale]
        table[f"{scope}:{key}"] = {**record, "created": time.time()}

    # -- persistence -------------------------------------------------------

    def save(self) -> None:
        if self.path is None:
            return
        with self.lock:
            data = json.dumps(self.state, separators=(",", ":"))
            directory = self.path.parent if str(self.path.parent) else Path(".")
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".stripe_emulator.", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(data)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
