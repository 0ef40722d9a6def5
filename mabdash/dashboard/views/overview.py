"""The overview: every experiment with its leader, traffic, alerts and approvals."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from mabdash.accounts.roles import OPERATOR, VIEWER, user_has_role
from mabdash.dashboard.selectors.overview import overview_rows
from mabdash.dashboard.views.access import role_required
from mabdash.experiments.models import Experiment


@require_GET
@role_required(VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    experiments = Experiment.objects.filter(archived_at__isnull=not archived).order_by("slug")
    rows = overview_rows(experiments)
    return render(
        request,
        "overview.html",
        {
            "rows": rows,
            "sparklines": {row["experiment"].slug: row["sparkline"] for row in rows},
            "archived": archived,
            "archived_count": Experiment.objects.filter(archived_at__isnull=False).count(),
            "can_act": user_has_role(request.user, OPERATOR),
        },
    )
