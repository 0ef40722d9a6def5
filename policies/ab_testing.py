"""A/B testing: a fixed traffic split for an exploration budget, then commit to the best.

With ``require_significance`` the commit waits until the best arm is better than *every*
other active arm with anytime-valid confidence sequences (:mod:`policies.confidence`):
however many times the test is repeated, the chance of committing to an arm that is not
the best is at most ``alpha``. (The first release repeated a fixed-sample z-test of best vs
runner-up every ``budget`` rewards; on two equal arms that committed in 13 % of runs by
the 5th look and 25 % by the 20th — ``python -m bench.guardrails`` measures both.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from policies._checks import check_finite_float, check_int
from policies.base import DEFAULT_MIN_SHARE, Policy, split_ties
from policies.confidence import MeanSequence, sequence_update
from policies.detectors import proven_best

#: Running sums of each arm's confidence sequence, kept in the policy state.
_SEQUENCE_STATE = {f"sequence_{name}_": "arm_float" for name in MeanSequence.field_names()}


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
        If True, commit only when the best active arm's lower confidence bound is above
        every other active arm's upper bound (confidence sequences for rewards in [0, 1],
        each bound at level ``alpha / (2 K)``); otherwise keep the split and test again at
        the next multiple of ``budget``. Valid however many times it is checked.
    alpha : float, default 0.05
        Probability of ever committing to an arm that is not the best (when arms are
        equal: of committing at all).
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
    extra_state = {"committed_arm_": "int", **_SEQUENCE_STATE}
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
        min_share: float = DEFAULT_MIN_SHARE,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_arms, min_share=min_share, seed=seed)
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

    def _update_extra(self, arms: np.ndarray, rewards: np.ndarray, start: int) -> None:
        for arm in np.unique(arms):
            sequence = sequence_update(self.sequence(int(arm)), rewards[arms == arm][None, :])
            for name in MeanSequence.field_names():
                getattr(self, f"sequence_{name}_")[arm] = getattr(sequence, name)[0]

    def sequence(self, arm: int) -> MeanSequence:
        """The confidence sequence of one arm's mean (rewards in [0, 1])."""
        return MeanSequence(
            *(getattr(self, f"sequence_{name}_")[arm : arm + 1].copy() for name in MeanSequence.field_names())
        )

    def commit_test(self) -> dict[str, Any]:
        """Is the best active arm better than every other active arm, anytime-valid?

        Returns
        -------
        dict
            ``best`` (highest mean); when it is proven better than every other active arm
            (:func:`policies.detectors.proven_best`), ``runner_up`` (the other arm with the
            highest upper bound), ``best_lower`` and ``runner_up_upper`` — else -1 and NaN;
            ``bound_alpha`` and ``commit``: whether the commit rule is met.
        """
        means = self.expected_rewards()
        candidates = self.active_ & (self.counts_ > 0)
        if not candidates.any():
            candidates = self.active_
        best = int(np.argmax(np.where(candidates, np.nan_to_num(means, nan=-np.inf), -np.inf)))
        bound_alpha = self.alpha / (2 * self.n_arms)
        result: dict[str, Any] = {"best": best, "runner_up": -1, "best_lower": math.nan, "runner_up_upper": math.nan}
        result["bound_alpha"] = bound_alpha
        if candidates.sum() < 2:
            result["commit"] = True
            return result
        proven = proven_best(self.sequences(), candidates, alpha=self.alpha)
        if proven is not None:
            result.update(runner_up=proven.runner_up, best_lower=proven.lower, runner_up_upper=proven.runner_up_upper)
        result["commit"] = (not self.require_significance) or (proven is not None and proven.arm == best)
        return result

    def sequences(self) -> MeanSequence:
        """Every arm's confidence sequence, one stream per arm."""
        return MeanSequence(*(getattr(self, f"sequence_{name}_").copy() for name in MeanSequence.field_names()))

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
