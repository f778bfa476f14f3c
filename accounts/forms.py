"""Sign-up and log-in by email, on top of Django's own auth forms.

A user's username *is* their email address, lower-cased, so Django's unique username
constraint also makes emails unique without caring about case, and Django's login,
password reset and django-axes lockout all keep working unchanged.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.contrib.auth.models import User  # what BaseUserCreationForm.Meta.model is

# `auth.User.username` is 150 characters; an email longer than that cannot be a username.
EMAIL_MAX_LENGTH = User._meta.get_field("username").max_length


class SignupForm(BaseUserCreationForm[User]):
    email = forms.EmailField(
        label="Email",
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    class Meta:  # BaseUserCreationForm.Meta's model; its other options are replaced here
        model = User
        fields = ("email",)
        field_classes: dict[str, type[forms.Field]] = {}

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip().lower()
        taken = User.objects.filter(username__iexact=email).exists() or (
            User.objects.filter(email__iexact=email).exists()
        )
        if taken:
            raise forms.ValidationError(
                "An account with this email already exists. Log in, or reset your password.",
                code="duplicate_email",
            )
        return email

    def _post_clean(self) -> None:
        # Set before the password validators run, so "similar to your email" is caught.
        if self.cleaned_data.get("email"):
            self.instance.username = self.cleaned_data["email"]
        super()._post_clean()  # type: ignore[misc]  # a private Django hook the stubs omit


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, with the username field presented (and matched) as an email."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        # A text input, not type=email: staff accounts made with createsuperuser may have
        # plain usernames, and they log in here too.
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "inputmode": "email"})

    def clean_username(self) -> str:
        # Emails are matched without case: log in as whichever account has it exactly.
        typed = (self.cleaned_data.get("username") or "").strip()
        matches = list(User.objects.filter(username__iexact=typed).values_list("username")[:2])
        return matches[0][0] if len(matches) == 1 else typed
