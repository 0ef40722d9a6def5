"""Shared fixtures for the policy tests: one factory that builds every strategy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import policies

#: Per-kind hyper-parameters needed to build a 3-arm policy (required ones, or small
#: values that make budgets, epochs and windows trigger inside short tests).
SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "naive": {"arm": 1},
    "validation": {"scores": [0.2, 0.9, 0.5]},
    "ab_test": {"budget": 7},
    "epsilon_greedy": {"epsilon": 0.2, "decay": 0.01},
    "ucb1": {},
    "thompson": {"n_draws": 2048},
    "discounted_thompson": {"gamma": 0.5, "n_draws": 2048},
    "sw_ucb": {"window": 9},
}

ALL_KINDS = list(policies.POLICIES)


def build(kind: str, n_arms: int = 3, seed: int = 11, **overrides: Any) -> policies.Policy:
    """A policy of ``kind`` with the small test parameters (sized for ``n_arms``)."""
    params = dict(SMALL_PARAMS[kind])
    if kind == "validation" and n_arms != 3:
        params["scores"] = [0.9 if k == 1 else 0.1 * (k % 5) for k in range(n_arms)]
    params.update(overrides)
    return policies.make_policy(kind, n_arms, params, seed=seed)


def bernoulli_batch(n: int, means: list[float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded (arm, 0/1 reward) pairs with uniformly chosen arms."""
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, len(means), n)
    rewards = (rng.random(n) < np.asarray(means)[arms]).astype(float)
    return arms, rewards


@pytest.fixture(params=ALL_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param
