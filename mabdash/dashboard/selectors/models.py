"""The model pages: the experiments a model version serves in, and its share of traffic."""

from __future__ import annotations

from typing import Any

from mabdash.dashboard import charts
from mabdash.dashboard.selectors.snapshots import iso, served_allocation, snapshot_series
from mabdash.experiments.models import Arm, ModelVersion


def model_detail(model: ModelVersion) -> dict[str, Any]:
    """The experiments a model version is in, and its served share over time in each."""
    arms = list(Arm.objects.filter(model_version=model).select_related("experiment").order_by("experiment__slug"))
    series = []
    for arm in arms:
        points = snapshot_series(arm.experiment_id, None)
        series.append(
            {
                "experiment": arm.experiment.slug,
                "times": [iso(p["created_at"]) for p in points],
                "shares": [_share(served_allocation(p), arm.position) for p in points],
            }
        )
    return {"arms": arms, "figure": charts.served_share_figure(series)}


def _share(allocation: list[float | None], position: int) -> float | None:
    return allocation[position] if position < len(allocation) else None
