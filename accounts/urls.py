"""Accounts (Django's auth views, logging in by email) and the members' area.

Django's auth URLs stay un-namespaced (`login`, `logout`, `password_reset`...) because
`LOGIN_URL`, the admin and Django's own templates refer to them by those names; the
views written here live under the `accounts:` namespace.
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views
from accounts.forms import EmailAuthenticationForm

app_patterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/purchase/", views.purchase, name="purchase"),
]

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include((app_patterns, "accounts"))),
]
