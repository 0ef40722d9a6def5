"""The audit page: every recorded change as a history card, filters, and a CSV export (JSON
cells, the same JSON the cards show)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from mabdash.accounts.roles import VIEWER
from mabdash.dashboard.selectors.audit import audit_entries, audit_filter_choices
from mabdash.dashboard.selectors.history import history_page
from mabdash.dashboard.views.access import role_required


def _parse_time(value: str, field: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value) or (parse_datetime(value + "T00:00:00") if len(value) == 10 else None)
    if parsed is None:
        errors[field] = "use a date (2026-11-28) or date-time (2026-11-28T09:30)"
    elif parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@role_required(VIEWER)
def audit_log(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    errors: dict[str, str] = {}
    filters = {key: request.GET.get(key, "").strip() for key in ("experiment", "actor", "kind", "since", "until")}
    since = _parse_time(filters["since"], "since", errors)
    until = _parse_time(filters["until"], "until", errors)
    entries = audit_entries(
        experiment=filters["experiment"], actor=filters["actor"], kind=filters["kind"], since=since, until=until
    )
    if request.GET.get("format") == "csv" and not errors:
        writer = csv.writer(_Echo())
        header = ["time", "experiment", "actor", "kind", "summary", "reason", "before", "after", "evidence"]
        rows = (
            [
                e.created_at.isoformat(),
                e.experiment.slug if e.experiment else "",
                e.actor,
                e.kind,
                e.summary,
                e.reason,
                json.dumps(e.before),
                json.dumps(e.after),
                json.dumps(e.evidence),
            ]
            for e in entries.iterator()
        )
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in [header, *rows]), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="mabdash-audit.csv"'
        return response
    page, cards = history_page(entries, request.GET.get("page"), per_page=50)
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "audit_log.html",
        {
            "page": page,
            "history_cards": cards,
            "filters": filters,
            "errors": errors,
            "choices": audit_filter_choices(),
            "query": query,
        },
        status=400 if errors else 200,
    )
