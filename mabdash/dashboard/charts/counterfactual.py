"""The What-if chart: every alternative's estimated mean reward with its interval, next to
what was actually earned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mabdash.dashboard.charts.style import PALETTE, Figure, _layout


def counterfactual_figure(rows: Sequence[dict[str, Any]], actual: dict[str, Any], highlight: str | None) -> Figure:
    """Points with error bars, one row per alternative (evaluable ones only); the actual
    mean as a vertical line in a band (its interval); ``highlight`` (the experiment's own
    strategy) in its own colour."""
    shown = [row for row in rows if row["value"] is not None]
    labels = [f"{row['target']} ({row['method'].upper()})" for row in shown]
    colours = [PALETTE[1] if row["target"] == highlight else PALETTE[0] for row in shown]
    figure: Figure = {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "estimate",
                "x": [row["value"] for row in shown],
                "y": labels,
                "marker": {"color": colours, "size": 9},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    # An unbounded end (one decision: no spread to estimate) draws no bar.
                    "array": [None if row["upper"] is None else row["upper"] - row["value"] for row in shown],
                    "arrayminus": [None if row["lower"] is None else row["value"] - row["lower"] for row in shown],
                    "color": "#6b7280",
                },
                "hovertemplate": "%{y}: %{x:.4f}<extra></extra>",
            }
        ],
        "layout": _layout(
            "Estimated mean reward per decision, with 95 % intervals",
            height=max(260, 28 * len(shown) + 120),
            margin={"l": 260, "r": 24, "t": 40, "b": 48},
            hovermode="closest",
            showlegend=False,
            xaxis={"title": {"text": "mean reward per decision"}, "gridcolor": "#e5e7eb"},
            yaxis={"autorange": "reversed", "automargin": True},
        ),
    }
    if actual.get("lower") is not None and actual.get("upper") is not None:
        figure["layout"]["shapes"] = [
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": actual["lower"],
                "x1": actual["upper"],
                "y0": 0,
                "y1": 1,
                "fillcolor": "rgba(0, 158, 115, 0.15)",
                "line": {"width": 0},
            },
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": actual["mean"],
                "x1": actual["mean"],
                "y0": 0,
                "y1": 1,
                "line": {"color": PALETTE[2], "width": 2},
            },
        ]
        figure["layout"]["annotations"] = [
            {
                "x": actual["mean"],
                "y": 1.02,
                "xref": "x",
                "yref": "paper",
                "text": "earned",
                "showarrow": False,
                "font": {"color": PALETTE[2]},
            }
        ]
    return figure
