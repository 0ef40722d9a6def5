"""The audit page: entries filtered by experiment, actor, kind and time."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from mabdash.experiments.models import AuditEntry, Experiment


def audit_entries(
    *,
    experiment: str = "",
    actor: str = "",
    kind: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Audit entries filtered by experiment slug, actor, kind prefix and time range."""
    entries = AuditEntry.objects.select_related("experiment").order_by("-created_at", "-id")
    if experiment:
        entries = entries.filter(experiment__slug=experiment)
    if actor:
        entries = entries.filter(actor=actor)
    if kind:
        entries = entries.filter(kind__startswith=kind)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lte=until)
    return entries


def audit_filter_choices() -> dict[str, list[str]]:
    return {
        "experiments": list(Experiment.objects.order_by("slug").values_list("slug", flat=True)),
        "actors": list(AuditEntry.objects.order_by("actor").values_list("actor", flat=True).distinct()),
        "kinds": list(AuditEntry.objects.order_by("kind").values_list("kind", flat=True).distinct()),
    }
