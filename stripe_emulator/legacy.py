"""Opening a data file written by an older emulator: one JSON document.

`--data FILE` keeps its meaning across the move to SQLite: an old JSON state
at FILE is imported into a SQLite database at the same path, the JSON kept as
``FILE.legacy-json``; a file that is neither is refused, and left alone.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from stripe_emulator.store import COLLECTIONS, StateFileError, Store, is_sqlite


def open_store(path: Path) -> Store:
    """The store at `path`, after importing an old JSON state found there."""
    if not is_sqlite(path):
        state = read_state(path)
        kept = path.with_name(path.name + ".legacy-json")
        import_state(path, state)
        print(
            f"stripe_emulator: imported the JSON state in {path} (kept as {kept})", file=sys.stderr
        )
    return Store(path)


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        state = None
    if not isinstance(state, dict) or not set(COLLECTIONS) & set(state):
        raise StateFileError(
            f"stripe_emulator: {path} is not an emulator data file (neither SQLite nor the "
            "old JSON state); give another --data path or move the file away."
        )
    return state


def import_state(path: Path, state: dict[str, Any]) -> None:
    """Write `state` into a new SQLite file, then swap it in for the JSON."""
    tmp = path.with_name(path.name + ".importing")
    companions = [Path(f"{tmp}-wal"), Path(f"{tmp}-shm")]
    for leftover in (tmp, *companions):
        leftover.unlink(missing_ok=True)
    store = Store(tmp)
    with store.lock:
        for collection in COLLECTIONS:
            for obj in state.get(collection, {}).values():
                store.put(collection, obj)
        for scoped, record in state.get("idempotency", {}).items():
            store.conn.execute(
                "INSERT OR REPLACE INTO idempotency (key, created, record) VALUES (?, ?, ?)",
                (scoped, record["created"], json.dumps(record)),
            )
        for delivery in state.get("deliveries", {}).values():
            store.delivery_put(delivery)
        store.conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                ("seq", int(state.get("seq", 0))),
                ("clock_offset", int(state.get("clock_offset", 0))),
            ],
        )
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    os.replace(path, path.with_name(path.name + ".legacy-json"))
    os.replace(tmp, path)
    for leftover in companions:
        leftover.unlink(missing_ok=True)
