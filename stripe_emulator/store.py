"""All emulator state in one SQLite file (standard library `sqlite3`, WAL).

Objects are JSON documents in one table keyed by (collection, id), with their
`created` and insertion sequence as columns so lists come newest first from
an index, and expression indexes on the fields lists filter by. Each change
is written where it happens, so a write costs the same with 10 objects or
100,000 (the JSON file this replaced was rewritten whole on every write).

The server is threaded; one connection is shared under ``Store.lock``, a
re-entrant lock that is also the transaction: the outermost ``with
store.lock`` commits on the way out, or rolls back if an exception leaves it.
``save()`` commits at once, for a change that must stay even if the
operation fails later.

A data file written by an older emulator (one JSON document) is imported
by legacy.py before the store opens it.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import string
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

COLLECTIONS = (
    "products",
    "prices",
    "checkout_sessions",
    "payment_intents",
    "charges",
    "refunds",
    "disputes",
    "events",
)

# Fields that lists filter on, each with an index that also gives the order.
# (`_due`: when a test card's refund changes by itself, refunds.py.)
INDEXED_FIELDS = ("product", "payment_intent", "charge", "status", "type", "lookup_key", "_due")

SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS objects (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        created INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (collection, id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS objects_newest ON objects (collection, created, seq)",
    *(
        f"CREATE INDEX IF NOT EXISTS objects_by_{name} "
        f"ON objects (collection, json_extract(data, '$.{name}'), created, seq)"
        for name in INDEXED_FIELDS
    ),
    # Open sessions by due time: the expiry sweep runs on every session access.
    """CREATE INDEX IF NOT EXISTS objects_due ON objects (
        collection, json_extract(data, '$.status'), json_extract(data, '$.expires_at')
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL)",
    """CREATE TABLE IF NOT EXISTS idempotency (
        key TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created)",
    """CREATE TABLE IF NOT EXISTS deliveries (
        event TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempted INTEGER NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status, seq)",
    "CREATE INDEX IF NOT EXISTS deliveries_attempted ON deliveries (attempted, seq)",
]

_ALPHABET = string.ascii_letters + string.digits
_FIELD = re.compile(r"^[a-z_]+$")
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_SCALAR = (str, int, float, bool)

Filter = tuple[str, str, Any]


def new_id(prefix: str, length: int = 24) -> str:
    """An id shaped like Stripe's: a type prefix and random alphanumerics."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class BadCursor(LookupError):
    """A `starting_after` / `ending_before` id that is not in the list."""


class StateFileError(SystemExit):
    """The data file is neither the emulator's SQLite state nor its old JSON."""


def is_sqlite(path: Path) -> bool:
    """True for a SQLite database, or no file yet (an empty one becomes one)."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with path.open("rb") as fh:
        return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


class _Transaction:
    """A re-entrant lock whose outermost holder commits or rolls back."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.RLock()
        self._depth = 0

    def __enter__(self) -> _Transaction:
        self._lock.acquire()
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._depth -= 1
            if self._depth == 0:
                if exc_type is None:
                    self._store.conn.commit()
                else:
                    self._store.conn.rollback()
        finally:
            self._lock.release()


class Store:
    """Objects by collection and id, plus events, idempotency and deliveries."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = _Transaction(self)
        self._seq = 0
        self._clock_offset = 0
        if path is not None and not is_sqlite(path):
            raise StateFileError(
                f"stripe_emulator: {path} is not a SQLite database; start the emulator "
                "with `python -m stripe_emulator --data FILE`, which imports an old JSON state."
            )
        self.conn = self._connect(path)
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        self._seq = int(meta.get("seq", 0))
        self._clock_offset = int(meta.get("clock_offset", 0))

    @staticmethod
    def _connect(path: Path | None) -> sqlite3.Connection:
        if path is not None and str(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False, timeout=10
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the process dying, not the machine.
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.commit()
        return conn

    def close(self) -> None:
        with self.lock:
            self.conn.commit()
        self.conn.close()

    # -- clock -------------------------------------------------------------

    def now(self) -> int:
        """Emulated wall clock in unix seconds; tests may move it forward."""
        return int(time.time()) + self._clock_offset

    def advance_clock(self, seconds: int) -> int:
        with self.lock:
            self._clock_offset += seconds
            self.set_meta("clock_offset", self._clock_offset)
            return self.now()

    def set_meta(self, key: str, value: Any) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
            )

    def get_meta(self, key: str) -> Any:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- objects -----------------------------------------------------------

    def next_seq(self) -> int:
        """A strictly increasing number that breaks ties between equal `created`."""
        with self.lock:
            self._seq += 1
            self.set_meta("seq", self._seq)
            return self._seq

    def get(self, collection: str, obj_id: str) -> dict[str, Any] | None:
        """A copy of the stored object: a change to it is kept only by `put`."""
        with self.lock:
            row = self.conn.execute(
                "SELECT data FROM objects WHERE collection = ? AND id = ?", (collection, obj_id)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if "_seq" not in obj:
                obj["_seq"] = self.next_seq()
            self.conn.execute(
                "INSERT OR REPLACE INTO objects (collection, id, created, seq, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    collection,
                    obj["id"],
                    int(obj.get("created", 0)),
                    obj["_seq"],
                    json.dumps(obj, separators=(",", ":")),
                ),
            )
        return obj

    def delete(self, collection: str, obj_id: str) -> None:
        with self.lock:
            self.conn.execute(
                "DELETE FROM objects WHERE collection = ? AND id = ?", (collection, obj_id)
            )

    def find(
        self, collection: str, filters: list[Filter], limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The objects that pass the filters, newest first."""
        where, args = _where(collection, filters)
        sql = f"SELECT data FROM objects WHERE {where} ORDER BY created DESC, seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self.lock:
            rows = self.conn.execute(sql, args).fetchall()
        return [json.loads(row[0]) for row in rows]

    def page(
        self,
        collection: str,
        filters: list[Filter],
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of a newest-first list and whether there is more past it.

        A cursor must be an object of the filtered list, as at Stripe.
        """
        where, args = _where(collection, filters)
        with self.lock:
            cursor = starting_after or ending_before
            if cursor:
                row = self.conn.execute(
                    f"SELECT created, seq FROM objects WHERE {where} AND id = ?", [*args, cursor]
                ).fetchone()
                if row is None:
                    raise BadCursor(cursor)
            if starting_after:
                sql = (
                    f"SELECT data FROM objects WHERE {where} AND (created, seq) < (?, ?) "
                    "ORDER BY created DESC, seq DESC LIMIT ?"
                )
                args += [row[0], row[1], limit + 1]
            elif ending_before:
                # The objects just newer than the cursor, nearest first.
                sql = (
                    f"SELECT data FROM objects WHERE {where} AND (created, seq) > (?, ?) "
                    "ORDER BY created ASC, seq ASC LIMIT ?"
                )
                args += [row[0], row[1], limit + 1]
            else:
                sql = (
                    f"SELECT data FROM objects WHERE {where} "
                    "ORDER BY created DESC, seq DESC LIMIT ?"
                )
                args.append(limit + 1)
            rows = self.conn.execute(sql, args).fetchall()
        items = [json.loads(row[0]) for row in rows[:limit]]
        if ending_before:
            items.reverse()
        return items, len(rows) > limit

    # -- webhook deliveries --------------------------------------------------

    def delivery_put(self, delivery: dict[str, Any]) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO deliveries (event, seq, status, attempted, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    delivery["event"],
                    delivery["seq"],
                    delivery["status"],
                    1 if delivery["attempts"] else 0,
                    json.dumps(delivery),
                ),
            )

    def delivery_get(self, event_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT data FROM deliveries WHERE event = ?", (event_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def deliveries(
        self, *, status: str | None = None, event_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Deliveries in event order, all or those with this status or these events."""
        sql, args = "SELECT data FROM deliveries WHERE 1", []
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        if event_ids is not None:
            sql += f" AND event IN ({','.join('?' * len(event_ids))})"
            args += event_ids
        with self.lock:
            rows = self.conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [json.loads(row[0]) for row in rows]

    def delivery_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(
                self.conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
            )

    def delivery_attempted_after(self, seq: int) -> bool:
        """Whether a delivery of a later event has been attempted."""
        with self.lock:
            row = self.conn.execute(
                "SELECT 1 FROM deliveries WHERE attempted = 1 AND seq > ? LIMIT 1", (seq,)
            ).fetchone()
        return row is not None

    # -- persistence -------------------------------------------------------

    def save(self) -> None:
        """Commit now: what is written so far stays even if the operation fails later."""
        with self.lock:
            self.conn.commit()


def _where(collection: str, filters: list[Filter]) -> tuple[str, list[Any]]:
    """SQL for the filters of a list; a value no object can have matches nothing."""
    clauses: list[str] = ["collection = ?"]
    args: list[Any] = [collection]
    for field, op, value in filters:
        if field in ("id", "created"):
            column = field
        elif _FIELD.match(field):
            column = f"json_extract(data, '$.{field}')"
        else:
            raise ValueError(f"bad field name {field!r}")
        if op == "in":
            values = [v for v in value if isinstance(v, _SCALAR)]
            if not values:
                clauses.append("0")
                continue
            clauses.append(f"{column} IN ({','.join('?' * len(values))})")
            args += values
        elif not isinstance(value, _SCALAR):
            clauses.append("0")
        elif op == "eq":
            clauses.append(f"{column} = ?")
            args.append(value)
        elif op == "prefix":
            assert isinstance(value, str)  # events.py makes prefix filters of strings
            clauses.append(f"substr({column}, 1, ?) = ?")
            args += [len(value), value]
        elif op in _OPS:
            clauses.append(f"{column} {_OPS[op]} ?")
            args.append(value)
        else:
            raise ValueError(f"unknown filter op {op!r}")
    return " AND ".join(clauses), args
