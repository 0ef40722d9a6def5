"""Read-mostly admin views of the domain; changes go through the dashboard, the API and services."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mabdash.experiments.models import AuditEntry, Experiment, ModelVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("name", "version", "validation_score", "artifact_uri", "registered_by", "created_at")
    search_fields = ("name", "version")


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name", "status", "policy_kind", "reward_kind", "approval_mode", "rollback_mode")
    list_filter = ("status", "policy_kind")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "experiment", "actor", "kind", "reason")
    list_filter = ("kind",)
    search_fields = ("actor", "reason")
