"""`SESSION_ENGINE`: Django's database sessions, announced on every save and delete.

Every process keeps a memo of what a session's pages show (`store.visitors`); a session
saved (a login, a cart created, a message queued) or deleted (logout, a new key on login)
makes that copy stale in every process, once committed.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends import db

from live.publish import publish_on_commit
from store.visitors import SESSIONS, session_topic_id


def _announce(session_key: str) -> None:
    publish_on_commit([session_topic_id(session_key)], SESSIONS)


class SessionStore(db.SessionStore):
    def save(self, must_create: bool = False) -> None:
        super().save(must_create=must_create)
        if not must_create and self.session_key:  # a new key: nobody has a copy of it
            _announce(self.session_key)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        super().delete(session_key)
        if key:
            _announce(key)

    async def asave(self, must_create: bool = False) -> None:
        await super().asave(must_create=must_create)
        if not must_create and self.session_key:
            await sync_to_async(_announce)(self.session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        await super().adelete(session_key)
        if key:
            await sync_to_async(_announce)(key)
