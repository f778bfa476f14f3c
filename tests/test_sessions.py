"""amazin.sessions: every saved or deleted session is announced (after commit) under
"sessions", so no process's header memo outlives the session data it was read from."""

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction

from amazin.sessions import SessionStore
from pagecache.changes import changes
from store.visitors import SESSIONS, session_topic_id

pytestmark = pytest.mark.django_db(transaction=True)


def changed(key: str) -> int:
    return changes.changed_at(SESSIONS, session_topic_id(key))


def test_it_is_the_engine():
    assert settings.SESSION_ENGINE == "amazin.sessions"


def test_a_save_and_a_delete_are_announced_once_committed():
    session = SessionStore()
    session["cart_id"] = 1
    session.create()  # a new key: nobody can hold a copy of it
    key = session.session_key
    assert key
    created = changed(key)

    with transaction.atomic():
        session["cart_id"] = 2
        session.save()
        during = changed(key)
    saved = changed(key)
    SessionStore(key).delete()
    deleted = changed(key)

    assert during == created  # not before the commit
    assert created < saved < deleted


def test_the_async_save_and_delete_are_announced_too():
    session = SessionStore()
    session.create()
    key = session.session_key
    before = changed(key)

    session["x"] = 1
    async_to_sync(session.asave)()
    saved = changed(key)
    async_to_sync(session.adelete)()

    assert before < saved < changed(key)
