"""Streams put the drift where the documentation says; rewards are right on hand-made counts."""

from __future__ import annotations

import numpy as np
import pytest

from replay.datasets import load_adult, synthetic_fraud
from replay.streams import census_stream, confusion, fraud_stream, reward


@pytest.fixture(scope="module")
def adult():
    return load_adult()


def test_census_drift_is_the_switch_from_married_to_unmarried(adult):
    stream = census_stream(adult, seed=0)
    married_columns = [i for i, n in enumerate(adult.feature_names) if n.startswith("marital-status=Married")]
    married = stream.X[:, married_columns].sum(axis=1) == 1
    switch = int(np.argmin(married))  # the first unmarried row
    assert married[:switch].all() and not married[switch:].any()
    assert switch == int(np.char.startswith(adult.columns["marital-status"], "Married").sum())
    lo, hi = stream.chunks[stream.drift_chunk]
    assert lo <= switch < hi and stream.drift_chunk == 36
    assert (stream.train, stream.validate) == (slice(0, 6000), slice(6000, 8000))
    assert stream.chunks[0][0] == 8000 and stream.chunks[-1][1] == len(adult) and stream.n_chunks == 100


def test_census_streams_differ_by_seed_but_hold_the_same_rows(adult):
    a, b = census_stream(adult, seed=0), census_stream(adult, seed=1)
    assert not np.array_equal(a.y, b.y) and a.y.sum() == b.y.sum()


def test_fraud_drift_chunk_holds_the_first_transaction_after_one_day():
    table = synthetic_fraud(n_rows=20_000, seed=1)
    stream = fraud_stream(table, n_chunks=50)
    first_late = int(np.searchsorted(table.columns["Time"], 86_400.0))
    lo, hi = stream.chunks[stream.drift_chunk]
    assert lo <= first_late < hi
    assert stream.train == slice(0, 3000) and stream.validate == slice(3000, 4000)  # a fifth of 20,000
    assert (stream.X[:, 0] < 86_400).all()  # time of day, not absolute time


def test_confusion_counts():
    assert confusion(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1])).tolist() == [2, 1, 1, 1]


def test_census_reward_is_accuracy():
    assert reward("census", np.array([30, 10, 20, 140])) == 170 / 200


def test_fraud_reward_is_the_share_of_the_worst_cost_avoided():
    # 3 frauds, 997 legitimate: 1 caught, 2 missed, 10 false alarms.
    assert reward("fraud", np.array([1, 10, 2, 987])) == pytest.approx(1 - (2 * 100 + 10) / (3 * 100 + 997))
    # A chunk without any fraud: only false alarms cost.
    assert reward("fraud", np.array([0, 5, 0, 995])) == pytest.approx(1 - 5 / 1000)
    assert reward("fraud", np.array([0, 0, 0, 1000])) == 1.0
    with pytest.raises(ValueError, match="an empty chunk has no reward"):
        reward("fraud", np.array([0, 0, 0, 0]))
