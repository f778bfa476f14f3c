"""What changed, and when: a stamp for every change this process hears of.

live tells every change it learns of (`live.registry.listen`, connected in `apps.py`): a
publish in this process at once, another process's as the channel delivers it, and
"anything" (ids None) when the channel failed or fell behind. Each moves `stamp` on and
is remembered per topic and id, so a copy made at an older stamp can ask whether what it
was made of changed since.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass

TRACKED_IDS = 100_000  # ids whose last change a topic remembers, before it forgets them all


@dataclass(frozen=True)
class Depends:
    """What a kept value was made of: these ids under these topics (`ids`, as (topic, id)
    pairs), and any id under `topics`. A change to any of them makes it stale; so does a
    change of unknown ids, whatever it names."""

    ids: tuple[tuple[str, int], ...] = ()
    topics: tuple[str, ...] = ()


class Changes:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every change (a forked child, whose copies are all dropped)."""
        self._lock = threading.Lock()
        self.stamp = 0  # counts every change heard of, of any topic
        self._ids: dict[str, dict[int, int]] = {}  # topic -> id -> stamp at its last change
        self._topics: dict[str, int] = {}  # topic -> stamp at its last change of any id
        self._floors: dict[str, int] = {}  # topic -> stamp when it forgot its ids
        self._all = 0  # stamp at the last change of anything (ids unknown)

    def note(self, ids: Collection[int] | None, topic: str) -> None:
        """A change: to these ids under `topic`, or (None) to anything of any topic."""
        with self._lock:
            self.stamp += 1
            if ids is None:
                self._all = self.stamp
                return
            self._topics[topic] = self.stamp
            changed = self._ids.setdefault(topic, {})
            for pk in ids:
                changed[pk] = self.stamp
            if len(changed) > TRACKED_IDS:  # forget them: everything older is stale once
                changed.clear()
                self._floors[topic] = self.stamp

    def changed_at(self, topic: str, pk: int) -> int:
        """The stamp at the last change to `pk` under `topic` (what a copy made at an older
        stamp has missed), or at the last change it cannot place."""
        return max(
            self._ids.get(topic, {}).get(pk, 0),
            self._floors.get(topic, 0),
            self._all,
        )

    def topic_changed_at(self, topic: str) -> int:
        """The stamp at the last change to any id under `topic` (or to anything)."""
        return max(self._topics.get(topic, 0), self._all)

    def unchanged_since(self, stamp: int, depends: Depends) -> bool:
        """Has nothing of `depends` changed after `stamp`?"""
        return (
            self._all <= stamp
            and all(self.topic_changed_at(topic) <= stamp for topic in depends.topics)
            and all(self.changed_at(topic, pk) <= stamp for topic, pk in depends.ids)
        )


changes = Changes()  # this process's
