"""Admin for API keys: creating one shows the key once; revoking is an action."""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from mabdash.accounts.models import ApiKey
from mabdash.accounts.services import api_key_create, api_key_revoke
from mabdash.errors import ServiceError


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "role", "user", "all_experiments", "created_at", "revoked_at")
    list_filter = ("role", "all_experiments")
    search_fields = ("name", "prefix")
    fields = (
        "name",
        "role",
        "user",
        "all_experiments",
        "experiments",
        "prefix",
        "created_by",
        "created_at",
        "revoked_at",
    )
    readonly_fields = ("prefix", "created_by", "created_at", "revoked_at")
    filter_horizontal = ("experiments",)
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A key's scope is fixed once issued: revoke it and create another instead.
        if obj is not None:
            return (*self.readonly_fields, "name", "role", "user", "all_experiments", "experiments")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return
        try:
            created = api_key_create(
                name=obj.name,
                role=obj.role,
                experiments=form.cleaned_data.get("experiments", []),
                all_experiments=obj.all_experiments,
                created_by=request.user if request.user.is_authenticated else None,
                user=obj.user,
            )
        except ServiceError as error:
            messages.error(request, error.message)
            return
        obj.pk = created.api_key.pk
        messages.warning(request, f"New API key (shown once, store it now): {created.raw_key}")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # api_key_create already stored the experiments

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead, so the audit of who used which key stays meaningful

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset:
            api_key_revoke(key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")
