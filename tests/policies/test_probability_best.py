"""Thompson's probability of being best by quadrature: checked against closed forms and Monte
Carlo, deterministic, and never exactly zero for an arm that could still win."""

from __future__ import annotations

import math

import numpy as np
import pytest

import policies
from policies.probability_best import beta_probability_best


def exact_two_arm(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X₂ > X₁) for X_i ~ Beta(a_i, b_i), integer a₂ (Evan Miller's closed form)."""

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    return sum(
        math.exp(log_beta(a1 + i, b1 + b2) - math.log(b2 + i) - log_beta(1 + i, b2) - log_beta(a1, b1))
        for i in range(a2)
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [((1, 1), (2, 1)), ((31, 71), (41, 61)), ((500, 500), (510, 490)), ((4001, 1001), (4010, 992)), ((3, 40), (60, 2))],
)
def test_two_arms_match_the_closed_form(first, second):
    expected = exact_two_arm(*first, *second)
    got = beta_probability_best(np.array([first[0], second[0]]), np.array([first[1], second[1]]), np.ones(2, bool))
    assert got[1] == pytest.approx(expected, abs=2e-4)
    assert got.sum() == pytest.approx(1.0, abs=1e-12)


def test_equal_arms_get_exactly_equal_shares():
    got = beta_probability_best(np.full(5, 7.0), np.full(5, 3.0), np.ones(5, bool))
    assert np.allclose(got, 0.2, atol=1e-12)  # the first release served 0.185–0.214 here


def test_many_arms_match_monte_carlo():
    alpha = np.array([51.0, 49.0, 30.0, 48.0, 2.0])
    beta = np.array([49.0, 51.0, 70.0, 50.0, 3.0])
    got = beta_probability_best(alpha, beta, np.ones(5, bool))
    draws = np.random.default_rng(7).beta(alpha, beta, size=(1_000_000, 5))
    monte_carlo = np.bincount(draws.argmax(axis=1), minlength=5) / 1_000_000
    assert np.abs(got - monte_carlo).max() <= 5 * 0.5 / 1000  # five Monte Carlo standard errors


def test_inactive_arms_get_nothing_and_a_lone_arm_everything():
    got = beta_probability_best(np.array([5.0, 9.0, 2.0]), np.array([5.0, 1.0, 2.0]), np.array([True, False, True]))
    assert got[1] == 0.0 and got.sum() == pytest.approx(1.0)
    assert beta_probability_best(np.ones(3), np.ones(3), np.array([False, True, False])).tolist() == [0.0, 1.0, 0.0]


def test_thompson_allocation_is_the_same_for_the_same_state_and_keeps_unlikely_arms_served():
    rewards = {0: [1.0] * 900 + [0.0] * 100, 1: [1.0] * 300 + [0.0] * 700, 2: [1.0] * 850 + [0.0] * 150}
    a, b = policies.Thompson(3, seed=1), policies.Thompson(3, seed=2)
    for policy in (a, b):
        for arm, values in rewards.items():
            policy.update([arm] * len(values), values)
    assert np.array_equal(a.allocation(), b.allocation())  # no seed dependence left
    assert a.allocation()[1] == pytest.approx(0.01)  # P(best) ≈ 0: the 1 % floor keeps it served
