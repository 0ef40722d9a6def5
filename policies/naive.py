"""Naive deployment: one designated model serves everything and nothing is learned."""

from __future__ import annotations

import numpy as np

from policies._checks import check_int
from policies.base import DEFAULT_MIN_SHARE, Policy


class Naive(Policy):
    """Always serve the designated arm (the paper's "naive" baseline: deploy and forget).

    Parameters
    ----------
    n_arms : int
        Number of arms.
    arm : int, default 0
        The designated arm, usually the experiment's default (current production) model.
    seed : int or None, default None
        Unused randomness seed, accepted for a uniform contract.

    Notes
    -----
    Rewards are still recorded (for charts and rollback detectors) but never change the
    allocation. If the designated arm is excluded, traffic goes to the next active arm in
    index order (wrapping around) — the project's choice, so that a rollback of the
    designated model still has somewhere to send traffic.
    """

    kind = "naive"

    def __init__(
        self, n_arms: int, *, arm: int = 0, min_share: float = DEFAULT_MIN_SHARE, seed: int | None = None
    ) -> None:
        super().__init__(n_arms, min_share=min_share, seed=seed)
        self.arm = check_int("arm", arm, minimum=0)
        if self.arm >= self.n_arms:
            raise ValueError(f"arm: must be below n_arms={self.n_arms}, got {arm!r}")

    def _allocation_over_active(self) -> np.ndarray:
        order = (self.arm + np.arange(self.n_arms)) % self.n_arms
        target = order[np.argmax(self.active_[order])]
        allocation = np.zeros(self.n_arms)
        allocation[target] = 1.0
        return allocation
