"""Colours, marker symbols and the layout every dashboard figure shares."""

from __future__ import annotations

from collections.abc import Sequence
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
