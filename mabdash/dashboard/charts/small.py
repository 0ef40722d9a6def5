"""The small figures of the overview and model pages: sparklines and served share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mabdash.dashboard.charts.style import Figure, _layout, colour
from mabdash.dashboard.charts.time_series import allocation_figure


def sparkline_figure(
    times: Sequence[str], allocations: Sequence[Sequence[float | None]], labels: Sequence[str]
) -> Figure:
    """A small allocation chart for the overview (no axes, no legend)."""
    figure = allocation_figure(times, allocations, labels, events=[])
    figure["layout"] = {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "height": 40,
        "showlegend": False,
        "xaxis": {"visible": False},
        "yaxis": {"visible": False, "range": [0, 1]},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": False,
    }
    return figure


def served_share_figure(series: Sequence[dict[str, Any]]) -> Figure:
    """A model version's share of traffic over time in each experiment it serves in.
    ``series`` items: ``{"experiment", "times", "shares"}``."""
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": item["experiment"],
            "x": list(item["times"]),
            "y": list(item["shares"]),
            "line": {"color": colour(i), "width": 2},
            "hovertemplate": "%{y:.1%}",
        }
        for i, item in enumerate(series)
    ]
    return {"data": data, "layout": _layout("Share of traffic served", yaxis={"range": [0, 1], "tickformat": ".0%"})}
