"""Plotly figures for the dashboard: plain data in, figure dicts out (no database).

Figures are written as plain Plotly figure dicts (``{"data": [...], "layout": {...}}``)
rather than through ``plotly.graph_objects``: building validated graph objects costs about
35 ms per 10-trace figure here, which the detail page's 100 ms budget cannot afford. The
unit tests pass every figure through ``plotly.graph_objects.Figure`` so the dicts are
checked against Plotly's schema all the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

# Okabe–Ito (colour-blind safe), then Tableau for arms beyond eight.
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#8C564B",
    "#7F7F7F",
    "#17BECF",
    "#BCBD22",
]
EVENT_SYMBOLS = {
    "rollback": "x",
    "override": "diamond",
    "pin": "star",
    "status": "triangle-up",
    "arm": "circle",
}

Figure = dict[str, Any]


def colour(position: int) -> str:
    return PALETTE[position % len(PALETTE)]


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0, "font": {"size": 15}},
        "margin": {"l": 56, "r": 56, "t": 40, "b": 48},
        "legend": {"orientation": "h", "y": -0.25, "yanchor": "top"},
        "hovermode": "x unified",
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "xaxis": {"gridcolor": "#e5e7eb"},
        "yaxis": {"gridcolor": "#e5e7eb"},
    }
    layout.update(extra)
    return layout


def _column(rows: Sequence[Sequence[float | None]], index: int) -> list[float | None]:
    return [row[index] if index < len(row) else None for row in rows]


def event_category(kind: str) -> str:
    """Which marker an audit entry gets on the allocation chart."""
    for category in ("rollback", "override", "pin", "status", "arm"):
        if category in kind:
            return category
    return "status"


def allocation_figure(
    times: Sequence[str], allocations: Sequence[Sequence[float | None]], labels: Sequence[str], events: Sequence[dict]
) -> Figure:
    """Traffic share per arm over time (stacked area) with markers for operator and
    automatic actions. ``events`` items: ``{"time", "kind", "text"}``."""
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": label,
            "x": list(times),
            "y": _column(allocations, position),
            "stackgroup": "allocation",
            "line": {"width": 0.5, "color": colour(position)},
            "hovertemplate": "%{y:.1%}",
        }
        for position, label in enumerate(labels)
    ]
    if events:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "actions",
                "x": [event["time"] for event in events],
                "y": [1.04] * len(events),
                "text": [event["text"] for event in events],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {
                    "size": 11,
                    "color": "#111827",
                    "symbol": [EVENT_SYMBOLS[event_category(event["kind"])] for event in events],
                },
                "cliponaxis": False,
            }
        )
    return {
        "data": data,
        "layout": _layout(
            "Traffic allocation",
            yaxis={"range": [0, 1.08], "tickformat": ".0%", "gridcolor": "#e5e7eb", "title": {"text": "share"}},
        ),
    }


def means_figure(
    times: Sequence[str],
    means: Sequence[Sequence[float | None]],
    lowers: Sequence[Sequence[float | None]],
    uppers: Sequence[Sequence[float | None]],
    labels: Sequence[str],
) -> Figure:
    """Mean reward per arm over time, with its uncertainty band (interval or credible)."""
    data: list[dict[str, Any]] = []
    for position, label in enumerate(labels):
        lower, upper = _column(lowers, position), _column(uppers, position)
        band = [(t, lo, hi) for t, lo, hi in zip(times, lower, upper, strict=True) if lo is not None and hi is not None]
        if band:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{label} interval",
                    "x": [t for t, _, _ in band] + [t for t, _, _ in reversed(band)],
                    "y": [hi for _, _, hi in band] + [lo for _, lo, _ in reversed(band)],
                    "fill": "toself",
                    "fillcolor": colour(position) + "22",
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "showlegend": False,
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": list(times),
                "y": _column(means, position),
                "line": {"color": colour(position), "width": 2},
                "hovertemplate": "%{y:.4f}",
            }
        )
    return {"data": data, "layout": _layout("Mean reward per arm", yaxis={"title": {"text": "mean reward"}})}


def cumulative_figure(times: Sequence[str], cumulative_reward: Sequence[float], regret: Sequence[float]) -> Figure:
    """Cumulative reward and estimated regret against the best arm (secondary axis)."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "cumulative reward",
                "x": list(times),
                "y": list(cumulative_reward),
                "line": {"color": "#0072B2", "width": 2},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "estimated regret",
                "x": list(times),
                "y": list(regret),
                "yaxis": "y2",
                "line": {"color": "#D55E00", "width": 2, "dash": "dot"},
            },
        ],
        "layout": _layout(
            "Cumulative reward and estimated regret",
            yaxis={"title": {"text": "cumulative reward"}, "gridcolor": "#e5e7eb"},
            yaxis2={"title": {"text": "regret"}, "overlaying": "y", "side": "right", "showgrid": False},
        ),
    }


def estimated_regret(counts: Sequence[int], means: Sequence[float | None]) -> float:
    """Σ_k n_k (best mean − mean_k): reward lost against always serving the best arm,
    with the current estimates standing in for the truth."""
    known = [m for m in means if m is not None]
    if not known:
        return 0.0
    best = max(known)
    return float(sum(n * (best - m) for n, m in zip(counts, means, strict=True) if m is not None))


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


def traffic_figure(times: Sequence[str], served: Sequence[Sequence[int]], labels: Sequence[str]) -> Figure:
    """Decisions per minute per arm, from cumulative served counts at snapshot times."""
    stamps = [datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in times]
    data = []
    for position, label in enumerate(labels):
        counts = _column(served, position)
        rates: list[float | None] = []
        for i in range(1, len(stamps)):
            span = stamps[i] - stamps[i - 1]
            now, before = counts[i], counts[i - 1]
            if now is None or before is None or span <= 0:
                rates.append(None)
            else:
                rates.append((now - before) * 60.0 / span)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": list(times[1:]),
                "y": rates,
                "line": {"color": colour(position), "width": 2},
                "hovertemplate": "%{y:.1f}/min",
            }
        )
    return {"data": data, "layout": _layout("Served traffic per arm", yaxis={"title": {"text": "decisions / minute"}})}


def lag_figure(lags_seconds: Sequence[float], waiting_share: float | None) -> Figure:
    """Reward lag (decision to reward) histogram; the title gives the share still waiting."""
    waiting = "n/a" if waiting_share is None else f"{waiting_share:.1%}"
    return {
        "data": [
            {
                "type": "histogram",
                "name": "reward lag",
                "x": list(lags_seconds),
                "marker": {"color": "#009E73"},
                "hovertemplate": "%{x} s: %{y}<extra></extra>",
            }
        ],
        "layout": _layout(
            f"Reward lag — decisions still waiting for a reward: {waiting}",
            hovermode="closest",
            xaxis={"title": {"text": "seconds from decision to reward"}},
            yaxis={"title": {"text": "rewards"}},
        ),
    }


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
