"""Request types for the type checker."""

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """The request a `@login_required` view receives: its user is a `User`, never anonymous."""

    user: User
