"""Epsilon-greedy: exploit the best-looking arm, explore uniformly with probability ε."""

from __future__ import annotations

import numpy as np

from policies._checks import check_finite_float
from policies.base import DEFAULT_MIN_SHARE, Policy, split_ties


class EpsilonGreedy(Policy):
    """Serve the arm with the highest mean reward, except for an ε share spread uniformly.

    Parameters
    ----------
    n_arms : int
        Number of arms.
    epsilon : float, default 0.1
        Exploration share ε in [0, 1].
    decay : float, default 0.0
        Optional decay schedule: after ``n`` observed rewards the exploration share is
        ``ε / (1 + decay · n)``. 0 keeps ε constant.
    initial_value : float, default 0.0
        Mean assumed for an arm without data (0, as in mabwiser; set it above the reward
        range for optimistic initial values). A new arm starts here too.
    seed : int or None, default None
        Unused randomness seed, accepted for a uniform contract.

    Notes
    -----
    Closed form of the allocation over the active arms ``A`` with greedy set ``G``
    (the arms tied at the highest mean): ``ε_n/|A| + (1 - ε_n)/|G|`` on greedy arms and
    ``ε_n/|A|`` on the others, which is uniform tie-breaking.
    """

    kind = "epsilon_greedy"

    def __init__(
        self,
        n_arms: int,
        *,
        epsilon: float = 0.1,
        decay: float = 0.0,
        initial_value: float = 0.0,
        min_share: float = DEFAULT_MIN_SHARE,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_arms, min_share=min_share, seed=seed)
        self.epsilon = check_finite_float("epsilon", epsilon, low=0.0, high=1.0)
        self.decay = check_finite_float("decay", decay, low=0.0)
        self.initial_value = check_finite_float("initial_value", initial_value)

    def current_epsilon(self) -> float:
        """The exploration share after the rewards observed so far."""
        return self.epsilon / (1.0 + self.decay * self.n_observations)

    def _allocation_over_active(self) -> np.ndarray:
        means = np.nan_to_num(self.expected_rewards(), nan=self.initial_value)
        epsilon = self.current_epsilon()
        explore = self.active_ / self.active_.sum()
        return np.asarray(epsilon * explore + (1.0 - epsilon) * split_ties(means, self.active_), dtype=np.float64)
