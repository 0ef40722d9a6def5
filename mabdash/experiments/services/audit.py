"""The audit trail: an append-only record of every change people and guardrails make."""

from __future__ import annotations

from typing import Any

from mabdash.experiments.models import AuditEntry, Experiment


def actor_name(principal: Any) -> str:
    """How an actor appears in the registry and the audit log."""
    return getattr(principal, "username", None) or "system"


def audit_record(
    kind: str,
    actor: str,
    *,
    experiment: Experiment | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    summary: str = "",
) -> AuditEntry:
    """Append an audit entry (callers run it inside their transaction).

    ``summary`` is the entry in one sentence, for people; without one, the kind in words.
    """
    return AuditEntry.objects.create(
        experiment=experiment,
        actor=actor,
        kind=kind,
        summary=summary or kind.replace(".", " ").replace("_", " ").capitalize(),
        before=before,
        after=after,
        reason=reason,
        evidence=evidence or {},
    )
