"""Every figure, exactly, on small hand-made inputs — and valid for Plotly."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from mabdash.dashboard import charts

TIMES = ["2026-11-28T10:00:00Z", "2026-11-28T10:01:00Z", "2026-11-28T10:02:00Z"]
LABELS = ["#0 a:1", "#1 b:1"]


def valid(figure: dict) -> dict:
    go.Figure(figure)  # raises on anything Plotly's schema rejects
    return figure


def test_allocation_is_a_stacked_area_per_arm_with_action_markers():
    events = [
        {"time": TIMES[1], "kind": "experiment.status", "text": "experiment.status by ana: incident"},
        {"time": TIMES[2], "kind": "rollback.applied", "text": "rollback"},
    ]
    figure = valid(charts.allocation_figure(TIMES, [[0.5, 0.5], [0.7, 0.3], [1.0, 0.0]], LABELS, events))
    arms, markers = figure["data"][:2], figure["data"][2]
    assert [t["name"] for t in arms] == LABELS
    assert [t["y"] for t in arms] == [[0.5, 0.7, 1.0], [0.5, 0.3, 0.0]]
    assert {t["stackgroup"] for t in arms} == {"served"} and arms[0]["x"] == TIMES
    assert markers["x"] == [TIMES[1], TIMES[2]]
    assert markers["marker"]["symbol"] == ["triangle-up", "x"]
    assert markers["text"] == ["experiment.status by ana: incident", "rollback"]
    assert figure["layout"]["yaxis"]["tickformat"] == ".0%"


def test_allocation_shows_what_was_served_the_policys_own_split_on_demand_and_shades_overrides():
    served = [[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]]
    policy = [[0.5, 0.5], [0.6, 0.4], [0.7, 0.3]]
    overrides = [{"start": TIMES[1], "end": TIMES[2], "label": "pin #0"}]
    figure = valid(charts.allocation_figure(TIMES, served, LABELS, [], policy_allocations=policy, overrides=overrides))
    served_traces, policy_traces = figure["data"][:2], figure["data"][2:]
    assert [t["y"] for t in served_traces] == [[0.5, 1.0, 1.0], [0.5, 0.0, 0.0]]
    assert [(t["name"], t["visible"], t["y"]) for t in policy_traces] == [
        (f"policy's own split: {LABELS[0]}", "legendonly", [0.5, 0.6, 0.7]),
        (f"policy's own split: {LABELS[1]}", "legendonly", [0.5, 0.4, 0.3]),
    ]
    (shade,) = figure["layout"]["shapes"]
    assert (shade["x0"], shade["x1"], shade["type"]) == (TIMES[1], TIMES[2], "rect")
    assert figure["layout"]["annotations"][0]["text"] == "pin #0"


def test_allocation_without_events_has_only_arm_traces():
    figure = valid(charts.allocation_figure(TIMES[:1], [[1.0]], ["#0 a:1"], []))
    assert len(figure["data"]) == 1


def test_means_draw_a_band_only_where_the_interval_exists():
    figure = valid(
        charts.means_figure(
            TIMES,
            means=[[None, 0.5], [0.4, 0.5], [0.45, 0.6]],
            lowers=[[None, None], [0.2, 0.3], [0.3, 0.4]],
            uppers=[[None, None], [0.6, 0.7], [0.6, 0.8]],
            labels=LABELS,
        )
    )
    band0, line0, band1, line1 = figure["data"]
    assert band0["x"] == [TIMES[1], TIMES[2], TIMES[2], TIMES[1]]
    assert band0["y"] == [0.6, 0.6, 0.3, 0.2]  # upper forwards, lower backwards
    assert band0["fill"] == "toself" and band0["showlegend"] is False
    assert line0["y"] == [None, 0.4, 0.45] and line1["y"] == [0.5, 0.5, 0.6]
    assert band1["y"] == [0.7, 0.8, 0.4, 0.3]


def test_cumulative_reward_and_regret_on_two_axes():
    figure = valid(charts.cumulative_figure(TIMES, [0.0, 3.0, 7.0], [0.0, 0.5, 1.5]))
    reward, regret = figure["data"]
    assert (reward["y"], regret["y"], regret["yaxis"]) == ([0.0, 3.0, 7.0], [0.0, 0.5, 1.5], "y2")
    assert figure["layout"]["yaxis2"]["overlaying"] == "y"


def test_estimated_regret_uses_the_best_current_mean():
    assert charts.estimated_regret([10, 20, 5], [0.5, 0.8, None]) == pytest.approx(10 * 0.3)
    assert charts.estimated_regret([1, 1], [None, None]) == 0.0


def test_beta_densities_integrate_to_one_and_match_the_formula():
    grid = [(i + 0.5) / 1000 for i in range(1000)]
    density = charts.beta_density(3.0, 2.0, grid)
    assert sum(density) / 1000 == pytest.approx(1.0, abs=1e-5)
    assert density[499] == pytest.approx(12 * 0.4995**2 * 0.5005)  # Beta(3, 2) = 12 x² (1 - x)


def test_belief_is_beta_densities_for_thompson_and_intervals_otherwise():
    beta = valid(charts.belief_figure({"kind": "beta", "alpha": [2.0, 1.0], "beta": [1.0, 1.0]}, LABELS, points=4))
    assert beta["data"][0]["x"] == [0.125, 0.375, 0.625, 0.875]
    assert beta["data"][0]["y"] == pytest.approx([0.25, 0.75, 1.25, 1.75])  # Beta(2, 1) = 2x
    assert beta["data"][1]["y"] == pytest.approx([1.0] * 4)
    interval = valid(
        charts.belief_figure(
            {"kind": "interval", "mean": [0.5, None], "lower": [0.4, None], "upper": [0.7, None]}, LABELS
        )
    )
    (only,) = interval["data"]
    assert (only["x"], only["y"]) == (["#0 a:1"], [0.5])
    assert only["error_y"]["array"] == [pytest.approx(0.2)] and only["error_y"]["arrayminus"] == [pytest.approx(0.1)]


def test_probability_best_bars():
    figure = valid(charts.probability_best_figure([0.25, 0.75], LABELS))
    assert (figure["data"][0]["x"], figure["data"][0]["y"]) == (LABELS, [0.25, 0.75])


def test_traffic_is_decisions_per_minute_between_snapshots():
    figure = valid(charts.traffic_figure(TIMES, [[0, 0], [30, 60], [30, 90]], LABELS))
    assert figure["data"][0]["x"] == TIMES[1:]
    assert figure["data"][0]["y"] == [30.0, 0.0] and figure["data"][1]["y"] == [60.0, 30.0]


def test_lag_histogram_titles_the_waiting_share():
    figure = valid(charts.lag_figure([0.5, 1.5, 2.0], 0.125))
    assert figure["data"][0]["x"] == [0.5, 1.5, 2.0]
    assert (
        figure["layout"]["title"]["text"] == "Reward lag — the last day's decisions still waiting for a reward: 12.5%"
    )
    assert charts.lag_figure([], None)["layout"]["title"]["text"].endswith(": n/a")


def test_sparkline_has_no_axes():
    figure = valid(charts.sparkline_figure(TIMES, [[1, 0], [0.5, 0.5], [0, 1]], LABELS))
    assert figure["layout"]["xaxis"] == {"visible": False} and figure["layout"]["showlegend"] is False
    assert [t["y"] for t in figure["data"]] == [[1, 0.5, 0], [0, 0.5, 1]]


def test_served_share_per_experiment():
    figure = valid(charts.served_share_figure([{"experiment": "churn", "times": TIMES[:2], "shares": [0.2, 0.4]}]))
    assert (figure["data"][0]["name"], figure["data"][0]["y"]) == ("churn", [0.2, 0.4])


def test_colours_cycle_over_the_palette():
    assert charts.colour(0) == charts.colour(len(charts.PALETTE)) == "#0072B2"
