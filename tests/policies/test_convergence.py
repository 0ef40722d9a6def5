"""Learning on Bernoulli bandits: the bandits find the best arm, with logarithmic regret."""

from __future__ import annotations

import numpy as np
import pytest

import policies
from policies.simulation import PiecewiseBernoulli, run_bandit


def play(kind: str, means: list[float], horizon: int, seed: int) -> np.ndarray:
    params = {"n_draws": 1024} if kind == "thompson" else {}
    policy = policies.make_policy(kind, len(means), params, seed=seed)
    return run_bandit(policy, PiecewiseBernoulli(means), horizon, np.random.default_rng(seed), batch_size=10)


@pytest.mark.parametrize(
    ("kind", "minimum_share"),
    # ε-greedy can pick the best arm at most 1 - ε + ε/K = 92% of the time.
    [("epsilon_greedy", 0.90), ("ucb1", 0.93), ("thompson", 0.98)],
)
def test_bandits_converge_to_the_best_arm(kind, minimum_share):
    shares = [play(kind, [0.2, 0.3, 0.4, 0.5, 0.7], 5000, seed).best_arm_share(2500) for seed in range(3)]
    assert min(shares) >= minimum_share, shares


@pytest.mark.parametrize("kind", ["ucb1", "thompson"])
def test_regret_grows_logarithmically_on_ten_bernoulli_arms(kind):
    means = list(np.linspace(0.1, 0.5, 10))
    checkpoints = [2500, 5000, 10_000, 20_000]
    regret = np.mean([play(kind, means, 20_000, seed).regret[np.array(checkpoints) - 1] for seed in range(3)], axis=0)
    per_doubling = np.diff(regret)
    # Logarithmic regret adds about the same amount per doubling of the horizon; linear
    # regret would double it every time (4x from the first doubling to the third).
    assert per_doubling[2] <= 1.6 * per_doubling[0], regret
    # And the average regret per round keeps falling.
    assert regret[3] / 20_000 <= 0.5 * regret[0] / 2500, regret
