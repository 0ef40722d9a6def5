"""The action history as cards: one sentence each, who and when, before → after in words,
and the full evidence behind a disclosure — for the experiment page and the audit page.

Entries that belong to one request (asked, approved or rejected, carried out) become one
card, so a four-eyes change reads as one event with its steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from mabdash.control.services.narrative import arm_labels, change_in_words
from mabdash.dashboard.selectors.snapshots import iso
from mabdash.experiments.models import AuditEntry, Experiment

PAGE_SIZE = 25
TONES = {"rollback": "alert", "guardrail": "alert", "approval": "request", "override": "override"}


@dataclass
class Step:
    time: str
    when: str
    actor: str
    summary: str


@dataclass
class HistoryCard:
    """One event of the history, as the page shows it."""

    key: str
    time: str
    when: str
    actor: str
    kind: str
    tone: str
    summary: str
    experiment: str | None
    reason: str = ""
    changes: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    evidence: str = ""


def _request_of(entry: AuditEntry) -> int | None:
    for source in (entry.evidence or {}, entry.after if isinstance(entry.after, dict) else {}):
        request = source.get("request")
        if isinstance(request, int) and not isinstance(request, bool):
            return request
    return None


def _tone(kind: str) -> str:
    return next((tone for prefix, tone in TONES.items() if kind.startswith(prefix)), "plain")


def cards(entries: list[AuditEntry]) -> list[HistoryCard]:
    """Entries (newest first) as cards, those of one request merged into one."""
    labels: dict[int, dict[int, str]] = {}
    by_key: dict[str, HistoryCard] = {}
    ordered: list[HistoryCard] = []
    for entry in entries:
        experiment_id = entry.experiment_id
        if experiment_id is not None and experiment_id not in labels:
            labels[experiment_id] = arm_labels(entry.experiment) if entry.experiment else {}
        request = _request_of(entry)
        key = f"request-{request}" if request is not None else f"entry-{entry.pk}"
        summary = entry.summary or entry.kind
        changes = change_in_words(
            entry.before if isinstance(entry.before, dict) else None,
            entry.after if isinstance(entry.after, dict) else None,
            labels.get(experiment_id or 0, {}),
        )
        step = Step(iso(entry.created_at), f"{entry.created_at:%Y-%m-%d %H:%M:%S} UTC", entry.actor, summary)
        card = by_key.get(key)
        if card is None:
            card = HistoryCard(
                key=key,
                time=step.time,
                when=step.when,
                actor=entry.actor,
                kind=entry.kind,
                tone=_tone(entry.kind),
                summary=summary,
                experiment=entry.experiment.slug if entry.experiment else None,
                reason=entry.reason,
                changes=changes,
                evidence=json.dumps(
                    {"kind": entry.kind, "before": entry.before, "after": entry.after, "evidence": entry.evidence},
                    indent=2,
                    sort_keys=True,
                    default=str,
                ),
            )
            by_key[key] = card
            ordered.append(card)
        elif not card.changes and changes:
            # The step that changed something (the approved action) tells the story best.
            card.summary, card.changes, card.kind, card.tone = summary, changes, entry.kind, _tone(entry.kind)
        card.steps.append(step)
    for card in ordered:
        card.steps.reverse()  # oldest step first inside a card
        if len(card.steps) == 1:
            card.steps = []
    return ordered


def history_page(
    entries: QuerySet[AuditEntry], page_number: Any, per_page: int = PAGE_SIZE
) -> tuple[Page, list[HistoryCard]]:
    """One page of entries (newest first) and its cards."""
    page = Paginator(entries.select_related("experiment").order_by("-created_at", "-id"), per_page).get_page(
        page_number
    )
    return page, cards(list(page.object_list))


def experiment_history(experiment: Experiment, page_number: Any) -> tuple[Page, list[HistoryCard]]:
    return history_page(AuditEntry.objects.filter(experiment=experiment), page_number)


def latest_entry_id(experiment: Experiment) -> int:
    """The newest audit entry of the experiment (the page refreshes its history when it moves)."""
    return AuditEntry.objects.filter(experiment=experiment).order_by("-id").values_list("id", flat=True).first() or 0
