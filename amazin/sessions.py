"""`SESSION_ENGINE`: Django's database sessions, announced on every save and delete.

Every process keeps a memo of what a session's header shows (`store.visitors`); a session
saved (a login, a cart created, a message queued) or deleted (logout, a new key on login)
makes that copy stale in every process, once committed.
"""

from __future__ import annotations

from django.contrib.sessions.backends import db

from live.broker import publish_on_commit
from store.visitors import SESSIONS, session_topic_id


class SessionStore(db.SessionStore):
    def save(self, must_create: bool = False) -> None:
        super().save(must_create=must_create)
        if not must_create and self.session_key:  # a new key: nobody has a copy of it
            publish_on_commit([session_topic_id(self.session_key)], SESSIONS)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        super().delete(session_key)
        if key:
            publish_on_commit([session_topic_id(key)], SESSIONS)
