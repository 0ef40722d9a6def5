"""Rollback detectors: fire on planted degradations, stay quiet at the documented rate."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from policies.detectors import floor_rule
from policies.legacy_detectors import PageHinkleyState, page_hinkley
from policies.legacy_detectors import normal_relative_rule as relative_rule


def test_floor_fires_on_a_collapsed_arm_with_enough_samples():
    detections = floor_rule([60, 60, 49], [0.0, 0.7, 0.0], floor=0.01, min_samples=50)
    assert [d.fired for d in detections] == [True, False, False]
    assert detections[0].as_dict() == {
        "arm": 0,
        "rule": "floor",
        "fired": True,
        "evidence": {"window_count": 60, "window_mean": 0.0, "floor": 0.01, "min_samples": 50},
    }


def test_floor_ignores_arms_without_data():
    (detection,) = floor_rule([0], [float("nan")])
    assert not detection.fired and detection.evidence["window_mean"] is None


def test_relative_rule_fires_on_a_clearly_worse_arm_with_its_evidence():
    counts = [400, 400, 50]
    sums = [240.0, 120.0, 0.0]  # means 0.6, 0.3, 0.0 — arm 2 has too few samples
    sumsq = sums  # 0/1 rewards
    detections = relative_rule(counts, sums, sumsq, margin=0.05, confidence=0.95, min_samples=100)
    assert [d.fired for d in detections] == [False, True, False]
    evidence = detections[1].evidence
    var0, var1 = 0.24 * 400 / 399, 0.21 * 400 / 399
    se = math.sqrt(var0 / 400 + var1 / 400)
    assert evidence["best_arm"] == 0 and evidence["difference"] == pytest.approx(0.3)
    assert evidence["standard_error"] == pytest.approx(se)
    assert evidence["probability_worse"] == pytest.approx(NormalDist().cdf((0.3 - 0.05) / se))
    assert "probability_worse" not in detections[2].evidence


def test_relative_rule_ignores_inactive_arms_when_choosing_the_best():
    detections = relative_rule([400, 400], [400.0, 120.0], [400.0, 120.0], [False, True])
    assert [d.fired for d in detections] == [False, False]
    assert detections[1].evidence["best_arm"] == 1


def test_relative_rule_false_alarm_rate_on_equal_arms():
    rng = np.random.default_rng(5)
    alarms = 0
    for _ in range(1000):
        rewards = (rng.random((3, 500)) < 0.5).astype(float)
        sums = rewards.sum(axis=1)
        alarms += any(d.fired for d in relative_rule([500] * 3, sums, sums))
    assert alarms / 1000 <= 0.01


def test_page_hinkley_fires_soon_after_a_planted_drop():
    rng = np.random.default_rng(2)
    delays = []
    for _ in range(50):
        stream = np.concatenate([rng.random(2000) < 0.6, rng.random(3000) < 0.05]).astype(float)
        _, detection = page_hinkley(stream)
        assert detection.fired
        delays.append(detection.evidence["alarm_at"] - 2000)
    assert min(delays) > 0 and max(delays) <= 200


def test_page_hinkley_stays_quiet_on_stationary_streams_at_the_documented_rate():
    rng = np.random.default_rng(3)
    alarms = sum(page_hinkley((rng.random(10_000) < 0.5).astype(float))[1].fired for _ in range(500))
    assert alarms / 500 <= 0.01


def test_page_hinkley_batches_give_exactly_the_one_by_one_state():
    rng = np.random.default_rng(4)
    stream = rng.random(300)
    whole, _ = page_hinkley(stream)
    state = PageHinkleyState()
    for value in stream:
        state, _ = page_hinkley([value], state)
    assert state == whole
    assert PageHinkleyState.from_dict(whole.as_dict()) == whole


def test_page_hinkley_evidence_on_a_hand_computed_stream():
    state, detection = page_hinkley([1.0, 0.0], delta=0.0, threshold=0.4, min_samples=2)
    # running means 1, 0.5; increments 1-1=0, 0.5-0=0.5; statistic 0.5, minimum 0.
    assert state == PageHinkleyState(n=2, total=1.0, statistic=0.5, minimum=0.0)
    assert detection.fired and detection.evidence["alarm_at"] == 2
    assert detection.evidence["excursion"] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rewards": [float("nan")]}, r"^rewards: must be finite"),
        ({"rewards": [1.0], "threshold": 0}, r"^threshold: must be greater than 0"),
    ],
)
def test_page_hinkley_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        page_hinkley(**kwargs)


def test_page_hinkley_state_is_validated():
    with pytest.raises(ValueError, match=r"^n: must be at least 0"):
        PageHinkleyState.from_dict({"n": -1, "total": 0, "statistic": 0, "minimum": 0})
    with pytest.raises(ValueError, match=r"^total: must be finite"):
        PageHinkleyState.from_dict({"n": 1, "total": float("inf"), "statistic": 0, "minimum": 0})
