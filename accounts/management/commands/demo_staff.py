"""`make run`'s staff account: so the admin is one copy-paste away on a first run.

It works as the shop's staff do: in the "Shop staff" group (orders, products, stock,
shipping, refunds), not a superuser.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEMO_STAFF_EMAIL = "staff@amazin.localhost"
SHOP_STAFF = "Shop staff"  # made by migration payments.0013


class Command(BaseCommand):
    help = "Create (or reset) the demo staff account with a fresh password; DEBUG only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default=DEMO_STAFF_EMAIL)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_staff is for development (DEBUG=1) only.")
        email = options["email"].strip().lower()
        # A new password every run: nothing guessable survives a demo left running.
        password = secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
        user.email = email
        user.is_staff = user.is_active = True
        user.is_superuser = False
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name=SHOP_STAFF))
        self.stdout.write(f"{email} {password}")
