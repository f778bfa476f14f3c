from django.contrib import admin
from django.urls import include, path

from store.views import healthz

urlpatterns = [
    path("", include("live.urls")),
    path("", include("store.urls")),
    path("", include("cart.urls")),
    path("", include("payments.urls")),
    path("", include("accounts.urls")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]

handler404 = "amazin.errors.page_not_found"
