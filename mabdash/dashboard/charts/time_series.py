"""Figures over time: allocation, mean reward, cumulative reward and regret, traffic, lag."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mabdash.dashboard.charts.style import EVENT_SYMBOLS, Figure, _column, _layout, colour


def event_category(kind: str) -> str:
    """Which marker an audit entry gets on the allocation chart."""
    for category in ("rollback", "override", "pin", "status", "arm"):
        if category in kind:
            return category
    return "status"


def allocation_figure(
    times: Sequence[str],
    allocations: Sequence[Sequence[float | None]],
    labels: Sequence[str],
    events: Sequence[dict[str, Any]],
    *,
    policy_allocations: Sequence[Sequence[float | None]] | None = None,
    overrides: Sequence[dict[str, Any]] = (),
) -> Figure:
    """Traffic served per arm over time (stacked area) — exactly what decide samples from,
    after status, pins, manual weights and excluded arms.

    ``policy_allocations``: the policy's own split, as dotted lines hidden until clicked in the
    legend. ``overrides`` items ``{"start", "end", "label"}`` are shaded; ``events`` items
    ``{"time", "kind", "text"}`` are markers above the plot.
    """
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": label,
            "x": list(times),
            "y": _column(allocations, position),
            "stackgroup": "served",
            "line": {"width": 0.5, "color": colour(position)},
            "hovertemplate": "%{y:.1%}",
        }
        for position, label in enumerate(labels)
    ]
    for position, label in enumerate(labels if policy_allocations is not None else []):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"policy's own split: {label}",
                "legendgroup": "policy",
                "visible": "legendonly",
                "x": list(times),
                "y": _column(policy_allocations or [], position),
                "line": {"width": 1.5, "dash": "dot", "color": colour(position)},
                "hovertemplate": "policy %{y:.1%}",
            }
        )
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
    shapes = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": period["start"],
            "x1": period["end"],
            "y0": 0,
            "y1": 1,
            "fillcolor": "rgba(234, 179, 8, 0.15)",
            "line": {"width": 0},
            "layer": "above",
        }
        for period in overrides
    ]
    annotations = [
        {
            "x": period["start"],
            "y": 1,
            "xref": "x",
            "yref": "paper",
            "text": period["label"],
            "showarrow": False,
            "xanchor": "left",
            "yanchor": "top",
            "font": {"size": 10, "color": "#854d0e"},
        }
        for period in overrides
    ]
    return {
        "data": data,
        "layout": _layout(
            "Traffic served (shaded: pin or manual weights in force)" if overrides else "Traffic served",
            yaxis={"range": [0, 1.08], "tickformat": ".0%", "gridcolor": "#e5e7eb", "title": {"text": "share"}},
            shapes=shapes,
            annotations=annotations,
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
            f"Reward lag — the last day's decisions still waiting for a reward: {waiting}",
            hovermode="closest",
            xaxis={"title": {"text": "seconds from decision to reward"}},
            yaxis={"title": {"text": "rewards"}},
        ),
    }
