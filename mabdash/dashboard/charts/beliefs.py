"""Figures of what a policy believes: posterior densities and probability of being best."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mabdash.dashboard.charts.style import Figure, _layout, colour


def beta_density(alpha: float, beta: float, grid: Sequence[float]) -> list[float]:
    """The Beta(α, β) density on ``grid`` (points strictly inside (0, 1))."""
    log_norm = math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(beta)
    return [math.exp(log_norm + (alpha - 1) * math.log(x) + (beta - 1) * math.log1p(-x)) for x in grid]


def belief_figure(belief: dict[str, Any], labels: Sequence[str], points: int = 300) -> Figure:
    """Current belief about each arm's mean: Beta densities for Beta–Bernoulli Thompson
    sampling, otherwise the mean with its interval."""
    if belief["kind"] == "beta":
        grid = [(i + 0.5) / points for i in range(points)]
        data = [
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": grid,
                "y": beta_density(belief["alpha"][position], belief["beta"][position], grid),
                "line": {"color": colour(position), "width": 2},
                "fill": "tozeroy",
                "fillcolor": colour(position) + "22",
            }
            for position, label in enumerate(labels)
        ]
        layout = _layout(
            "Belief about each arm's mean (Beta posterior)",
            hovermode="closest",
            xaxis={"title": {"text": "mean reward"}, "range": [0, 1]},
            yaxis={"title": {"text": "density"}},
        )
        return {"data": data, "layout": layout}
    means = belief["mean"]
    lowers, uppers = belief["lower"], belief["upper"]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": label,
            "x": [label],
            "y": [means[position]],
            "marker": {"color": colour(position), "size": 12},
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [None if uppers[position] is None else uppers[position] - means[position]],
                "arrayminus": [None if lowers[position] is None else means[position] - lowers[position]],
            },
        }
        for position, label in enumerate(labels)
        if means[position] is not None
    ]
    return {
        "data": data,
        "layout": _layout(
            "Belief about each arm's mean (95% interval)", hovermode="closest", yaxis={"title": {"text": "mean reward"}}
        ),
    }


def probability_best_figure(probabilities: Sequence[float], labels: Sequence[str]) -> Figure:
    """Each arm's probability of being the best."""
    return {
        "data": [
            {
                "type": "bar",
                "name": "P(best)",
                "x": list(labels),
                "y": list(probabilities),
                "marker": {"color": [colour(i) for i in range(len(labels))]},
                "hovertemplate": "%{x}: %{y:.1%}<extra></extra>",
            }
        ],
        "layout": _layout(
            "Probability of being the best arm", hovermode="closest", yaxis={"range": [0, 1], "tickformat": ".0%"}
        ),
    }
