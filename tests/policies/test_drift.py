"""Drift-aware variants: exact forgetting, and less regret after an abrupt change."""

from __future__ import annotations

import numpy as np
import pytest

import policies
from policies.simulation import PiecewiseBernoulli, run_bandit


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.999])
def test_discounted_evidence_equals_the_direct_formula(gamma):
    rng = np.random.default_rng(0)
    arms = rng.integers(0, 3, 2500)
    rewards = rng.random(2500)
    policy = policies.DiscountedThompson(3, gamma=gamma)
    for lo in range(0, 2500, 333):
        policy.update(arms[lo : lo + 333], rewards[lo : lo + 333])
    weights = gamma ** np.arange(2499, -1, -1.0)
    counts, sums, sumsq = policy.evidence()
    for arm in range(3):
        mine = arms == arm
        assert counts[arm] == pytest.approx(weights[mine].sum(), rel=1e-9)
        assert sums[arm] == pytest.approx((weights * rewards)[mine].sum(), rel=1e-9)
        assert sumsq[arm] == pytest.approx((weights * rewards**2)[mine].sum(), rel=1e-9)


def test_discounted_posterior_forgets_towards_the_prior():
    policy = policies.DiscountedThompson(2, gamma=0.9)
    policy.update([0] * 50, [1.0] * 50)
    policy.update([1] * 200, [0.5] * 200)
    assert policy.posterior()["alpha"][0] == pytest.approx(1.0, abs=1e-7)


def test_sliding_window_uses_only_the_last_observations():
    policy = policies.SlidingWindowUCB(2, window=3)
    policy.update([0, 0, 1, 1, 0], [1.0, 1.0, 0.0, 1.0, 0.5])
    counts, sums, _ = policy.evidence()
    assert counts.tolist() == [1.0, 2.0]
    assert sums.tolist() == [0.5, 1.0]
    assert policy.counts_.tolist() == [3, 2]  # cumulative statistics are kept for charts


def test_sliding_window_state_is_checked():
    state = policies.SlidingWindowUCB(2, window=3).get_state()
    state["window_arms"] = [0, 1]
    with pytest.raises(ValueError, match=r"^window_rewards: must have as many entries as window_arms"):
        policies.policy_from_state(state)


@pytest.mark.parametrize(
    ("stationary", "drift_aware"),
    [("thompson", "discounted_thompson"), ("ucb1", "sw_ucb")],
)
def test_drift_aware_variant_cuts_post_change_regret_by_at_least_30_percent(stationary, drift_aware):
    # The best arm (0.8) degrades to 0.4 halfway; the others stay at 0.6 and 0.5.
    env = PiecewiseBernoulli([0.8, 0.6, 0.5], changes=[(5000, [0.4, 0.6, 0.5])])
    cuts = []
    for seed in range(3):
        post_change = {}
        for kind in (stationary, drift_aware):
            params = {"n_draws": 1024} if "thompson" in kind else {}
            policy = policies.make_policy(kind, 3, params, seed=seed)
            trajectory = run_bandit(policy, env, 10_000, np.random.default_rng(seed), batch_size=10)
            post_change[kind] = trajectory.regret[-1] - trajectory.regret[4999]
        cuts.append(1 - post_change[drift_aware] / post_change[stationary])
    assert min(cuts) >= 0.30, cuts
