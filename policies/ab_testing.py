"""A/B testing: a fixed traffic split for an exploration budget, then commit to the best."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int
from policies.base import Policy, split_ties


def welch_z_test(
    mean_a: float, var_a: float, n_a: float, mean_b: float, var_b: float, n_b: float
) -> tuple[float, float]:
    """Two-sided large-sample test of equal means with unequal variances (Welch's z).

    Parameters
    ----------
    mean_a, var_a, n_a, mean_b, var_b, n_b : float
        Sample mean, unbiased sample variance and size of each group (sizes ≥ 2).

    Returns
    -------
    (z, p_value) : tuple of float
        ``z = (mean_a - mean_b) / sqrt(var_a/n_a + var_b/n_b)`` and its two-sided p-value
        under the standard normal. Two constant samples with different means give
        ``z = ±inf, p = 0``; with equal means ``z = 0, p = 1``.
    """
    se = math.sqrt(var_a / n_a + var_b / n_b)
    diff = mean_a - mean_b
    if se == 0.0:
        return (0.0, 1.0) if diff == 0.0 else (math.copysign(math.inf, diff), 0.0)
    z = diff / se
    return z, 2.0 * (1.0 - NormalDist().cdf(abs(z)))


class ABTest(Policy):
    """Split traffic by fixed weights until a budget is spent, then commit to one arm.

    Parameters
    ----------
    n_arms : int
        Number of arms.
    weights : sequence of float or None, default None
        Relative traffic weights during the test; ``None`` is a uniform split.
    budget : int, default 1000
        Exploration budget in observed rewards. The commit decision is taken when the
        total number of rewards reaches ``budget``.
    require_significance : bool, default False
        If True, commit only when Welch's two-sided z-test (:func:`welch_z_test`) between
        the best and the runner-up arm gives ``p < alpha``; otherwise keep the split and
        test again at the next multiple of ``budget`` (a group-sequential design with a
        check every ``budget`` rewards; each check uses ``alpha`` as is).
    alpha : float, default 0.05
        Significance level of that test.
    seed : int or None, default None
        Unused randomness seed, accepted for a uniform contract.

    Attributes
    ----------
    committed_arm_ : int
        The arm committed to, or -1 while the test is running.

    Notes
    -----
    The best arm is the active arm with the highest mean reward (lowest index on a tie).
    After the commit, rewards keep being recorded but the choice is fixed; if the
    committed arm is later excluded, traffic goes to the best remaining active arm by
    mean. A new arm joins the split with relative weight ``weight`` (default 1, the
    uniform split's weight) and is not considered after a commit.
    """

    kind = "ab_test"
    extra_state = {"committed_arm_": "int"}
    committed_arm_: int
    per_arm_params = {"weights": ("weight", 1.0)}

    def __init__(
        self,
        n_arms: int,
        *,
        weights: Sequence[float] | None = None,
        budget: int = 1000,
        require_significance: bool = False,
        alpha: float = 0.05,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_arms, seed=seed)
        if weights is None:
            weights = [1.0] * self.n_arms
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
            raise ValueError("weights: must be a list with one weight per arm, or null")
        if len(weights) != self.n_arms:
            raise ValueError(f"weights: must have {self.n_arms} entries, got {len(weights)}")
        self.weights = [self._check_per_arm_value("weights", w) for w in weights]
        if sum(self.weights) <= 0:
            raise ValueError("weights: at least one weight must be positive")
        self.budget = check_int("budget", budget, minimum=1)
        if not isinstance(require_significance, bool):
            raise ValueError(f"require_significance: must be true or false, got {require_significance!r}")
        self.require_significance = require_significance
        self.alpha = check_finite_float("alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)

    def _check_per_arm_value(self, keyword: str, value: Any) -> float:
        return check_finite_float(keyword, value, low=0.0)

    def _breakpoints(self, start: int, size: int) -> list[int]:
        if self.committed_arm_ >= 0:
            return []
        first = (start // self.budget + 1) * self.budget
        return [n - start for n in range(first, start + size + 1, self.budget)]

    def _on_breakpoint(self, n_observations: int) -> None:
        if self.committed_arm_ < 0:
            decision = self.commit_test()
            if decision["commit"]:
                self.committed_arm_ = decision["best"]

    def commit_test(self) -> dict[str, Any]:
        """Compare the best and runner-up active arms now.

        Returns
        -------
        dict
            ``best`` and ``runner_up`` arm indices (``runner_up`` is -1 with fewer than
            two active arms with data), ``z``, ``p_value`` (NaN when no test is possible)
            and ``commit``: whether the commit rule is met.
        """
        means = self.expected_rewards()
        candidates = self.active_ & (self.counts_ > 0)
        if not candidates.any():
            candidates = self.active_
        order = np.argsort(-np.where(candidates, np.nan_to_num(means, nan=-np.inf), -np.inf), kind="stable")
        best = int(order[0])
        runner_up = int(order[1]) if candidates.sum() >= 2 else -1
        result: dict[str, Any] = {"best": best, "runner_up": runner_up, "z": math.nan, "p_value": math.nan}
        if runner_up < 0:
            result["commit"] = True
            return result
        if self.counts_[best] >= 2 and self.counts_[runner_up] >= 2:
            var = (self.sumsq_ - self.counts_ * means * means) / np.maximum(self.counts_ - 1, 1)
            var = np.maximum(var, 0.0)
            z, p_value = welch_z_test(
                float(means[best]),
                float(var[best]),
                float(self.counts_[best]),
                float(means[runner_up]),
                float(var[runner_up]),
                float(self.counts_[runner_up]),
            )
            result.update(z=z, p_value=p_value)
        result["commit"] = (not self.require_significance) or result["p_value"] < self.alpha
        return result

    def _allocation_over_active(self) -> np.ndarray:
        if self.committed_arm_ >= 0:
            if self.active_[self.committed_arm_]:
                allocation = np.zeros(self.n_arms)
                allocation[self.committed_arm_] = 1.0
                return allocation
            means = np.nan_to_num(self.expected_rewards(), nan=-np.inf)
            return split_ties(means, self.active_)
        weights = np.where(self.active_, np.asarray(self.weights), 0.0)
        if weights.sum() == 0.0:
            # Only zero-weight arms are left active: split evenly rather than serve nothing.
            return self.active_.astype(np.float64)
        return weights

    def _check_loaded_state(self) -> None:
        if self.committed_arm_ >= self.n_arms:
            raise ValueError(f"committed_arm: must be below n_arms={self.n_arms}")
