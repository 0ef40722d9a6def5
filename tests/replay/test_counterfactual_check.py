"""The off-policy estimates against the exact counterfactual of the census replay (supervised
data turned into bandit feedback): every model's reward on every request is known."""

from __future__ import annotations

import numpy as np
import pytest

from replay.counterfactual import check_seed, coverage_table, on_policy
from replay.datasets import load_adult
from replay.streams import census_stream, train_and_score

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def census_seeds():
    adult = load_adult()
    return [train_and_score(census_stream(adult, seed, n_chunks=20), seed).correct for seed in range(10)]


def test_always_model_k_estimates_cover_the_exact_value_in_nine_seeds_of_ten(census_seeds):
    """A uniformly random logging split; each 'always model k' estimated by IPS, SNIPS, DR."""
    table = coverage_table(
        [
            check_seed(correct, ("epsilon_greedy", {"epsilon": 1.0}), {}, seed)
            for seed, correct in enumerate(census_seeds)
        ]
    )
    assert len(table) == 5 * 3
    assert all(row["covered"] >= 0.9 for row in table), table
    assert [row["covered"] for row in table if row["method"] == "dr"] == [1.0, 1.0, 1.0, 0.9, 1.0]  # seeded


def test_a_logging_strategy_that_learns_still_supports_every_estimate(census_seeds):
    """ε-greedy with the 1 % floor logs every model (it learns as it logs); a replay of
    Thompson sampling is compared with Thompson run on-policy over as many requests."""
    checks = check_seed(census_seeds[0], ("epsilon_greedy", None), {"thompson": ("thompson", None)}, seed=0)
    replay = next(c for c in checks if c.method == "replay")
    assert replay.estimate is not None and abs(replay.estimate - replay.truth) < 0.03
    assert all(c.estimate is not None for c in checks)


def test_on_policy_runs_log_true_propensities():
    correct = np.array([[True, False] * 500, [True] * 1000])
    mean, arms, propensities, rewards = on_policy("epsilon_greedy", {"epsilon": 1.0}, correct, seed=1)
    assert np.allclose(propensities, 0.5) and rewards.tolist() == correct[arms, np.arange(1000)].astype(float).tolist()
    assert mean == rewards.mean()
