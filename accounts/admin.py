from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import Entitlement


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [("live", "Live"), ("revoked", "Revoked")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Entitlement]
    ) -> QuerySet[Entitlement]:
        if self.value() == "live":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class EntitlementAddForm(forms.ModelForm[Entitlement]):
    class Meta:
        model = Entitlement
        fields = ("user", "feature", "note")

    def clean(self) -> dict[str, Any]:
        # Django skips the one-live-grant constraint here (its condition is on revoked_at,
        # not a form field), so check it to show an error instead of a 500.
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data
        user, feature = cleaned.get("user"), cleaned.get("feature")
        live = Entitlement.objects.live().filter(user=user, feature=feature)
        if user and feature and live.exists():
            raise forms.ValidationError("This user already has live access.")
        return cleaned


@admin.register(Entitlement)
class EntitlementAdmin(admin.ModelAdmin[Entitlement]):
    """Grant by hand with "Add" (you are recorded as the granter), revoke with the action."""

    list_display = (
        "user",
        "feature",
        "is_live",
        "order",
        "granted_at",
        "granted_by",
        "revoked_at",
        "revoked_by",
    )
    list_filter = (LiveFilter, "feature", "granted_at")
    list_select_related = ("user", "order", "granted_by", "revoked_by")
    search_fields = ("user__email", "user__username", "note")
    raw_id_fields = ("user",)
    actions = ["revoke"]

    @admin.display(boolean=True, description="Live")
    def is_live(self, obj: Entitlement) -> bool:
        return obj.revoked_at is None

    def get_form(
        self,
        request: HttpRequest,
        obj: Entitlement | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[Entitlement]]:
        if obj is None:
            kwargs["form"] = EntitlementAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Entitlement | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("user", "feature", "note")
        return (
            "user",
            "feature",
            "order",
            "note",
            "granted_at",
            "granted_by",
            "revoked_at",
            "revoked_by",
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Entitlement | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        # Who, when and why a grant exists is history: only the note stays editable.
        return (
            "user",
            "feature",
            "order",
            "granted_at",
            "granted_by",
            "revoked_at",
            "revoked_by",
        )

    def save_model(
        self,
        request: HttpRequest,
        obj: Entitlement,
        form: forms.ModelForm[Entitlement],
        change: bool,
    ) -> None:
        if not change:
            assert request.user.is_authenticated  # the admin lets only staff in
            obj.granted_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Entitlement | None = None) -> bool:
        return False  # revoke instead, so the record of who had access stays

    @admin.action(description="Revoke the selected entitlements")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Entitlement]) -> None:
        assert request.user.is_authenticated  # the admin lets only staff in
        live = list(queryset.filter(revoked_at__isnull=True))
        for entitlement in live:
            services.entitlement_revoke(entitlement=entitlement, by=request.user)
        self.message_user(request, f"Revoked {len(live)} entitlement(s).", messages.SUCCESS)
