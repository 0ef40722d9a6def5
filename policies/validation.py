"""Validation-based deployment: serve the model with the best offline validation score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from policies._checks import check_finite_float
from policies.base import DEFAULT_MIN_SHARE, Policy, split_ties


class ValidationBest(Policy):
    """Serve the active arm with the highest validation score given at registration.

    Parameters
    ----------
    n_arms : int
        Number of arms.
    scores : sequence of float
        One validation score per arm (higher is better), typically each model's held-out
        metric. Required; ``add_arm(score=...)`` supplies the new arm's score.
    seed : int or None, default None
        Unused randomness seed, accepted for a uniform contract.

    Notes
    -----
    Static: live rewards are recorded but never change the choice. Equal scores split
    traffic evenly. When the best arm is excluded, the next best takes over.
    """

    kind = "validation"
    per_arm_params = {"scores": ("score", None)}

    def __init__(
        self, n_arms: int, *, scores: Sequence[float], min_share: float = DEFAULT_MIN_SHARE, seed: int | None = None
    ) -> None:
        super().__init__(n_arms, min_share=min_share, seed=seed)
        if isinstance(scores, (str, bytes)) or not isinstance(scores, Sequence):
            raise ValueError("scores: must be a list with one validation score per arm")
        if len(scores) != self.n_arms:
            raise ValueError(f"scores: must have {self.n_arms} entries, got {len(scores)}")
        self.scores = [check_finite_float("scores", score) for score in scores]

    def _allocation_over_active(self) -> np.ndarray:
        return split_ties(np.asarray(self.scores), self.active_)
