"""The staff's admin site: Django's, with the staff home as its index, and the records of
other libraries (django-axes' log-in attempts, the task queue's results) for superusers only.

It replaces `admin.site` (`amazin.apps.ShopAdminConfig`), so every `@admin.register` lands
here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.template.response import TemplateResponse

# Apps whose admin pages only superusers see: security and infrastructure records.
SUPERUSERS_ONLY = {"axes", "django_tasks_database"}


class SuperusersOnly(admin.ModelAdmin[Any]):
    """Mixed in before another app's ModelAdmin: nobody but a superuser sees it."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


class ShopAdminSite(admin.AdminSite):
    site_header = "Amazin staff"
    site_title = "Amazin staff"
    index_title = "Today"
    index_template = "admin/staff_home.html"

    def register(
        self,
        model_or_iterable: type[Model] | Iterable[type[Model]],
        admin_class: type[admin.ModelAdmin[Any]] | None = None,
        **options: Any,
    ) -> None:
        # A model is a class; Django tests for its metaclass (ModelBase), whose module crashes
        # mypy 1.19 with django-stubs when imported here ("Must not defer during final
        # iteration", in store/models.py).
        models = [model_or_iterable] if isinstance(model_or_iterable, type) else model_or_iterable
        for model in models:
            chosen = admin_class or admin.ModelAdmin
            if model._meta.app_label in SUPERUSERS_ONLY and not issubclass(chosen, SuperusersOnly):
                chosen = type(f"SuperusersOnly{chosen.__name__}", (SuperusersOnly, chosen), {})
            super().register(model, chosen, **options)

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        from payments.sales_chart import chart_build
        from payments.staff_home import home_read

        home = home_read(user=request.user)
        context = {"home": home, "charts": [chart_build(sales) for sales in home.sales]}
        return super().index(request, context | (extra_context or {}))
