"""The experiment page's What-if panel: the latest counterfactual report as rows and a chart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mabdash.dashboard import charts
from mabdash.evaluation.models import CounterfactualReport
from mabdash.evaluation.services.reports import report_done_latest
from mabdash.experiments.models import Experiment


def counterfactual_panel(experiment: Experiment) -> dict[str, Any]:
    """The latest finished report (rows, chart, sentence) and the one being computed, if any."""
    pending = (
        CounterfactualReport.objects.filter(
            experiment=experiment,
            status__in=[CounterfactualReport.Status.QUEUED, CounterfactualReport.Status.RUNNING],
        )
        .order_by("-requested_at")
        .first()
    )
    report = report_done_latest(experiment)
    panel: dict[str, Any] = {"pending": pending, "report": report, "rows": [], "figure": None}
    if report is None or not report.result:
        return panel
    result = report.result
    own = next((row["target"] for row in result["strategies"] if "(this experiment's)" in row["target"]), None)
    rows = [row["dr"] for row in result["fixed"]] + list(result["strategies"])
    panel.update(
        rows=[{**row, "own": row["target"] == own} for row in rows],
        figure=charts.counterfactual_figure(rows, result["actual"], own),
        result=result,
    )
    period = result.get("period") or {}  # reports computed before retention existed have none
    panel.update(
        since=_time(period.get("since")),
        archived_before=_time(period.get("archived_before")),
    )
    return panel


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
