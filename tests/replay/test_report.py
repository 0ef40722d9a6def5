"""Paired comparisons between settings, on hand-made summaries."""

from __future__ import annotations

import pytest

from replay.report import comparison_heading, comparison_table, standard_comparisons


def summary(routing: str, rollback: str, rewards: dict[str, list[float]]) -> dict:
    return {
        "dataset": "census",
        "scenario": "drift",
        "routing": routing,
        "rollback": rollback,
        "seeds": len(next(iter(rewards.values()))),
        "per_seed": {s: [{"mean_reward": r} for r in values] for s, values in rewards.items()},
    }


def test_request_minus_chunk_and_rollback_modes_are_paired_by_seed():
    summaries = [
        summary("chunk", "all", {"thompson": [0.80, 0.82, 0.84]}),
        summary("request", "all", {"thompson": [0.81, 0.83, 0.85]}),
        summary("chunk", "none", {"thompson": [0.70, 0.90, 0.84]}),
        summary("request", "none", {"thompson": [0.81, 0.83, 0.85]}),
    ]
    groups = standard_comparisons(summaries, ("chunk", "request"), ("all", "none"))
    assert [(g["field"], g.get("rollback"), g.get("routing")) for g in groups] == [
        ("routing", "all", None),
        ("rollback", None, "chunk"),
        ("rollback", None, "request"),
    ]
    (row,) = groups[0]["rows"]
    # Every seed gains exactly 0.01: the paired interval has no width and excludes 0.
    assert row["difference"]["mean"] == pytest.approx(0.01)
    assert row["difference"]["lower"] == pytest.approx(0.01) and row["difference"]["significant"]
    (chunk,) = groups[1]["rows"]
    assert chunk["difference"]["mean"] == pytest.approx(0.02 / 3) and not chunk["difference"]["significant"]
    assert comparison_heading(groups[0]) == "census, drift scenario, rollback: all: request- minus chunk-level routing"
    assert comparison_table(groups[2]).splitlines()[2] == (
        "| Thompson sampling | 0.8300 | 0.8300 | +0.0000 (+0.0000 … +0.0000) |"
    )
