"""Plotly figures for the dashboard: plain data in, figure dicts out (no database).

Figures are written as plain Plotly figure dicts (``{"data": [...], "layout": {...}}``)
rather than through ``plotly.graph_objects``: building validated graph objects costs about
35 ms per 10-trace figure here, which the detail page's 100 ms budget cannot afford. The
unit tests pass every figure through ``plotly.graph_objects.Figure`` so the dicts are
checked against Plotly's schema all the same.
"""

from mabdash.dashboard.charts.beliefs import belief_figure, beta_density, probability_best_figure
from mabdash.dashboard.charts.counterfactual import counterfactual_figure
from mabdash.dashboard.charts.small import served_share_figure, sparkline_figure
from mabdash.dashboard.charts.style import EVENT_SYMBOLS, PALETTE, Figure, colour
from mabdash.dashboard.charts.time_series import (
    allocation_figure,
    cumulative_figure,
    estimated_regret,
    event_category,
    lag_figure,
    means_figure,
    traffic_figure,
)

__all__ = [
    "EVENT_SYMBOLS",
    "PALETTE",
    "Figure",
    "allocation_figure",
    "belief_figure",
    "beta_density",
    "colour",
    "counterfactual_figure",
    "cumulative_figure",
    "estimated_regret",
    "event_category",
    "lag_figure",
    "means_figure",
    "probability_best_figure",
    "served_share_figure",
    "sparkline_figure",
    "traffic_figure",
]
