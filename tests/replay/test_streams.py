"""Streams put the drift where the documentation says; rewards are right on hand-made counts."""

from __future__ import annotations

import numpy as np
import pytest

from replay.datasets import load_adult, synthetic_fraud
from replay.streams import MODEL_NAMES, census_stream, confusion, fraud_stream, request_rewards, reward


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


def test_fraud_rewards_are_per_request_costs_and_the_chunk_reward_their_mean():
    predictions = np.array([1, 0, 1, 0, 0])
    labels = np.array([1, 1, 0, 0, 0])
    # caught, missed (costs 100 → 0), false alarm (costs 1 → 0.99), right, right
    assert request_rewards("fraud", predictions, labels).tolist() == [1.0, 0.0, 0.99, 1.0, 1.0]
    assert request_rewards("census", predictions, labels).tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
    counts = confusion(predictions, labels)
    assert reward("fraud", counts) == pytest.approx(np.mean([1.0, 0.0, 0.99, 1.0, 1.0]))
    # 3 frauds, 997 legitimate: 1 caught, 2 missed, 10 false alarms.
    assert reward("fraud", np.array([1, 10, 2, 987])) == pytest.approx(1 - (2 * 100 + 10) / (100 * 1000))
    assert reward("fraud", np.array([0, 0, 0, 1000])) == 1.0
    with pytest.raises(ValueError, match="an empty chunk has no reward"):
        reward("fraud", np.array([0, 0, 0, 0]))


def test_the_stationary_census_stream_mixes_everyone_and_has_no_drift(adult):
    stream = census_stream(adult, seed=0, drift=False)
    married_columns = [i for i, n in enumerate(adult.feature_names) if n.startswith("marital-status=Married")]
    married = stream.X[:, married_columns].sum(axis=1) == 1
    lo, hi = stream.chunks[0]
    assert stream.drift_chunk is None and 0.3 < married[lo:hi].mean() < 0.6  # 47 % of everyone is married
    assert stream.y.sum() == adult.y.sum()


def test_the_stationary_fraud_stream_is_the_drifting_one_until_the_drift():
    drifting, stationary = synthetic_fraud(n_rows=20_000, seed=3), synthetic_fraud(n_rows=20_000, seed=3, drift=False)
    day_one = drifting.columns["Time"] < 86_400
    assert np.array_equal(drifting.X[day_one], stationary.X[day_one])
    assert not np.array_equal(drifting.X[~day_one], stationary.X[~day_one])
    assert np.array_equal(drifting.y, stationary.y)
    assert fraud_stream(stationary, n_chunks=50).drift_chunk is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_best_fraud_model_changes_at_the_synthetic_drift(seed):
    from replay.runner import Settings, scored_stream

    scored = scored_stream("fraud", "drift", seed, Settings(strategies=(), routings=(), rollbacks=()))
    sizes = scored.offsets[1:] - scored.offsets[:-1]
    (a, b), (c, d) = scored.segments()
    before = scored.rewards[:, a:b] @ sizes[a:b]
    after = scored.rewards[:, c:d] @ sizes[c:d]
    # First day: the linear models lead; after the reversal a tree model does.
    assert MODEL_NAMES[before.argmax()] in ("logistic regression", "naive Bayes")
    assert MODEL_NAMES[after.argmax()] in ("decision tree", "random forest", "gradient boosting")
