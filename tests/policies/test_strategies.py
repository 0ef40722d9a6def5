"""Each strategy's decision rule, checked exactly on small hand-made inputs (with the
exploration floor off, ``min_share=0``; the floor has its own tests in test_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import policies
from policies.base import hoeffding_bound
from policies.confidence import MeanSequence, sequence_update
from policies.legacy_detectors import welch_z_test


def feed(policy: policies.Policy, per_arm: dict[int, list[float]]) -> policies.Policy:
    for arm, rewards in per_arm.items():
        policy.update([arm] * len(rewards), rewards)
    return policy


# ---------------------------------------------------------------- naive
def test_naive_serves_the_designated_arm_whatever_the_rewards():
    policy = feed(policies.Naive(3, min_share=0, arm=1), {1: [0.0] * 20, 2: [1.0] * 20})
    assert policy.allocation().tolist() == [0.0, 1.0, 0.0]


def test_naive_falls_through_to_the_next_active_arm_in_order():
    policy = policies.Naive(3, min_share=0, arm=2)
    policy.exclude(2)
    assert policy.allocation().tolist() == [1.0, 0.0, 0.0]
    policy.exclude(0)
    assert policy.allocation().tolist() == [0.0, 1.0, 0.0]


def test_naive_arm_must_exist():
    with pytest.raises(ValueError, match=r"^arm: must be below n_arms=3, got 3"):
        policies.Naive(3, min_share=0, arm=3)


# ---------------------------------------------------------------- validation
def test_validation_serves_the_best_score_and_splits_ties():
    assert policies.ValidationBest(3, min_share=0, scores=[0.8, 0.7, 0.1]).allocation().tolist() == [1.0, 0.0, 0.0]
    assert policies.ValidationBest(3, min_share=0, scores=[0.8, 0.8, 0.1]).allocation().tolist() == [0.5, 0.5, 0.0]


def test_validation_ignores_live_rewards_and_falls_back_to_the_next_best():
    policy = feed(policies.ValidationBest(3, min_share=0, scores=[0.8, 0.7, 0.1]), {0: [0.0] * 50, 2: [1.0] * 50})
    assert policy.allocation().tolist() == [1.0, 0.0, 0.0]
    policy.exclude(0)
    assert policy.allocation().tolist() == [0.0, 1.0, 0.0]


def test_validation_new_arm_needs_a_score_and_can_win():
    policy = policies.ValidationBest(2, min_share=0, scores=[0.8, 0.7])
    with pytest.raises(ValueError, match=r"^score: required when adding an arm"):
        policy.add_arm()
    policy.add_arm(score=0.95)
    assert policy.scores == [0.8, 0.7, 0.95]
    assert policy.allocation().tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([0.1], r"^scores: must have 2 entries, got 1"),
        ("ab", r"^scores: must be a list"),
        ([0.1, float("nan")], r"^scores: must be finite"),
    ],
)
def test_validation_scores_are_checked(scores, message):
    with pytest.raises(ValueError, match=message):
        policies.ValidationBest(2, min_share=0, scores=scores)


# ---------------------------------------------------------------- A/B test
def test_ab_test_splits_by_weights_until_the_budget_then_commits():
    policy = policies.ABTest(3, min_share=0, weights=[3.0, 1.0, 0.0], budget=10)
    assert policy.allocation().tolist() == [0.75, 0.25, 0.0]
    # One batch crossing the budget: the decision uses exactly the first 10 rewards.
    arms = [0, 1] * 5 + [0] * 6
    rewards = [0.0, 1.0] * 5 + [1.0] * 6
    policy.update(arms, rewards)
    assert policy.committed_arm_ == 1
    assert policy.allocation().tolist() == [0.0, 1.0, 0.0]


def test_ab_test_with_significance_commits_when_the_confidence_sequences_separate():
    policy = policies.ABTest(2, min_share=0, budget=4, require_significance=True, alpha=0.05)
    feed(policy, {0: [1.0, 0.0], 1: [0.0, 1.0]})  # 4 rewards, equal means: no commit
    assert policy.committed_arm_ == -1
    assert policy.allocation().tolist() == [0.5, 0.5]
    # Arm 0 always pays, arm 1 never: the same sequences computed on their own say when
    # the best arm's lower bound first clears the other's upper bound (each at α / 4).
    good, bad = MeanSequence.empty(), MeanSequence.empty()
    good = sequence_update(good, np.array([[1.0, 0.0]]))
    bad = sequence_update(bad, np.array([[0.0, 1.0]]))
    expected_look = None
    for look in range(2, 60):
        good = sequence_update(good, np.array([[1.0, 1.0]]))
        bad = sequence_update(bad, np.array([[0.0, 0.0]]))
        if expected_look is None and good.bounds(0.05 / 4)[0][0] > bad.bounds(0.05 / 4)[1][0]:
            expected_look = look
        feed(policy, {0: [1.0, 1.0], 1: [0.0, 0.0]})
        if policy.committed_arm_ >= 0:
            break
    assert expected_look is not None and look == expected_look
    assert policy.committed_arm_ == 0
    decision = policy.commit_test()
    assert decision["best"] == 0 and decision["runner_up"] == 1 and decision["bound_alpha"] == 0.05 / 4
    assert decision["best_lower"] > decision["runner_up_upper"]


def test_ab_test_committed_arm_excluded_falls_back_to_best_remaining_mean():
    policy = feed(policies.ABTest(3, min_share=0, budget=6), {0: [1.0, 1.0], 1: [0.5, 0.5], 2: [0.0, 0.0]})
    assert policy.committed_arm_ == 0
    policy.exclude(0)
    assert policy.allocation().tolist() == [0.0, 1.0, 0.0]


def test_ab_test_new_arm_joins_the_split_with_its_weight():
    policy = policies.ABTest(2, min_share=0, weights=[1.0, 1.0])
    policy.add_arm(weight=2.0)
    assert policy.allocation().tolist() == [0.25, 0.25, 0.5]


def test_welch_z_test_matches_hand_computation():
    z, p = welch_z_test(0.75, 0.25, 4, 0.25, 0.25, 4)
    assert z == pytest.approx(0.5 / math.sqrt(0.125))
    assert p == pytest.approx(2 * (1 - 0.9213503964748574), abs=1e-12)
    assert welch_z_test(1.0, 0.0, 5, 0.0, 0.0, 5) == (math.inf, 0.0)
    assert welch_z_test(1.0, 0.0, 5, 1.0, 0.0, 5) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"budget": 0}, r"^budget: must be at least 1"),
        ({"alpha": 1.0}, r"^alpha: must be less than 1"),
        ({"weights": [0.0, 0.0]}, r"^weights: at least one weight must be positive"),
        ({"weights": [-1.0, 1.0]}, r"^weights: must be at least 0"),
        ({"require_significance": "yes"}, r"^require_significance: must be true or false"),
    ],
)
def test_ab_test_parameters_are_checked(params, message):
    with pytest.raises(ValueError, match=message):
        policies.ABTest(2, min_share=0, **params)


# ---------------------------------------------------------------- epsilon-greedy
def test_epsilon_greedy_closed_form_with_uniform_tie_breaking():
    policy = feed(policies.EpsilonGreedy(3, min_share=0, epsilon=0.3), {0: [0.5, 0.5], 1: [1.0, 0.0], 2: [0.2]})
    assert policy.allocation() == pytest.approx([0.1 + 0.35, 0.1 + 0.35, 0.1], abs=1e-15)


def test_epsilon_greedy_decay_schedule():
    policy = feed(policies.EpsilonGreedy(2, min_share=0, epsilon=0.2, decay=0.5), {0: [1.0] * 6})
    assert policy.current_epsilon() == pytest.approx(0.2 / 4.0)
    assert policy.allocation() == pytest.approx([1 - 0.05 + 0.025, 0.025])


def test_epsilon_greedy_untried_arms_use_the_initial_value():
    policy = feed(policies.EpsilonGreedy(3, min_share=0, epsilon=0.0, initial_value=2.0), {0: [1.0]})
    assert policy.allocation().tolist() == [0.0, 0.5, 0.5]


# ---------------------------------------------------------------- UCB1
def test_ucb1_tries_untried_arms_first_and_splits_them():
    policy = feed(policies.UCB1(3, min_share=0), {0: [1.0]})
    assert policy.allocation().tolist() == [0.0, 0.5, 0.5]


def test_ucb1_index_matches_the_formula():
    policy = feed(policies.UCB1(2, min_share=0, alpha=0.5), {0: [1.0, 0.0, 1.0], 1: [0.0]})
    n = 4
    expected = [2 / 3 + 0.5 * math.sqrt(2 * math.log(n) / 3), 0.0 + 0.5 * math.sqrt(2 * math.log(n) / 1)]
    assert policy.upper_bounds() == pytest.approx(expected, abs=1e-15)
    assert policy.allocation().tolist() == [1.0, 0.0]  # 1.147 > 0.832


def test_ucb1_ties_split_evenly():
    policy = feed(policies.UCB1(3, min_share=0), {0: [1.0, 0.0], 1: [0.0, 1.0], 2: [0.0, 0.0]})
    assert policy.allocation().tolist() == [0.5, 0.5, 0.0]


# ---------------------------------------------------------------- Thompson
def test_thompson_beta_posterior_with_fractional_rewards():
    policy = feed(policies.Thompson(2, min_share=0, prior_alpha=2.0, prior_beta=1.0), {0: [1.0, 0.25], 1: [0.0]})
    posterior = policy.posterior()
    assert posterior["alpha"].tolist() == [3.25, 2.0]
    assert posterior["beta"].tolist() == [1.75, 2.0]
    assert policy.expected_rewards().tolist() == [0.65, 0.5]


def test_thompson_beta_rejects_rewards_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"^rewards: must be in \[0, 1\] for the beta model"):
        policies.Thompson(2, min_share=0).update([0], [1.5])


def test_thompson_gaussian_posterior_matches_hand_computation():
    policy = feed(policies.Thompson(2, min_share=0, model="gaussian"), {0: [1.0, 3.0]})
    posterior = policy.posterior()
    assert posterior["loc"].tolist() == pytest.approx([4 / 3, 0.0])
    assert posterior["df"].tolist() == [4.0, 2.0]
    assert posterior["scale"][0] == pytest.approx(math.sqrt((1 + 1 + 8 / 6) / 6))
    assert posterior["scale"][1] == pytest.approx(1.0)
    policy.update([1], [-250.0])  # real rewards are accepted
    assert policy.belief()["kind"] == "student_t"


def test_thompson_allocation_matches_the_exact_probability():
    # X ~ Beta(2, 1), Y ~ Beta(1, 1): P(X > Y) = ∫ 2x · x dx = 2/3.
    policy = feed(policies.Thompson(2, min_share=0, seed=4), {0: [1.0]})
    assert abs(policy.allocation()[0] - 2 / 3) <= 1e-4


def test_thompson_gaussian_allocation_is_within_the_monte_carlo_bound():
    policy = feed(policies.Thompson(2, min_share=0, model="gaussian", seed=4), {0: [1.0, 0.5], 1: [0.8, 0.6]})
    bound = hoeffding_bound(policy.n_draws, 2)
    assert bound == pytest.approx(math.sqrt(math.log(400) / 8192))
    post = policy.posterior()  # Student-t marginals of the two means
    grid = np.linspace(-60.0, 60.0, 2_000_001)
    step = grid[1] - grid[0]
    density = [
        (1 + ((grid - loc) / scale) ** 2 / df) ** (-(df + 1) / 2)
        for loc, scale, df in zip(post["loc"], post["scale"], post["df"], strict=True)
    ]
    density = [d / (d.sum() * step) for d in density]
    exact = float((density[0] * np.cumsum(density[1]) * step).sum() * step)  # P(X₀ > X₁)
    assert abs(policy.allocation()[0] - exact) <= bound


def test_thompson_allocation_is_deterministic_for_a_seed():
    a = feed(policies.Thompson(3, min_share=0, seed=9), {0: [1.0, 0.0], 1: [1.0]})
    b = feed(policies.Thompson(3, min_share=0, seed=9), {0: [1.0, 0.0], 1: [1.0]})
    assert np.array_equal(a.allocation(), b.allocation())


def test_thompson_belief_interval_is_a_posterior_quantile():
    policy = feed(policies.Thompson(1, min_share=0, n_draws=20000), {0: [1.0] * 30 + [0.0] * 70})
    belief = policy.belief(level=0.9)
    draws = policy.posterior_draws()[:, 0]
    assert np.mean(draws < belief["lower"][0]) == pytest.approx(0.05, abs=1e-3)
    assert belief["alpha"].tolist() == [31.0] and belief["beta"].tolist() == [71.0]


def test_thompson_model_is_checked():
    with pytest.raises(ValueError, match=r"^model: must be one of beta, gaussian, got 'poisson'"):
        policies.Thompson(2, min_share=0, model="poisson")
