from __future__ import annotations

from django import forms


class SessionForm(forms.Form):
    """`?session_id=` as Stripe fills it in: a Checkout Session id, nothing else."""

    session_id = forms.RegexField(regex=r"^cs_[A-Za-z0-9_]{1,250}$")
