"""The "Shop staff" group for tests: made by migration payments.0013, and made again by the
same function when a transactional test's flush has emptied the tables since."""

from __future__ import annotations

import importlib

from django.apps import apps
from django.contrib.auth.models import Group, User

_MIGRATION = importlib.import_module("payments.migrations.0013_shop_staff_group")
GROUP: str = _MIGRATION.GROUP


def shop_staff_group() -> Group:
    if not Group.objects.filter(name=GROUP).exists():
        _MIGRATION.group_create(apps, None)
    return Group.objects.get(name=GROUP)


def shop_staff_join(user: User) -> User:
    user.groups.add(shop_staff_group())
    return user
