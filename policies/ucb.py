"""UCB1 and its drift-aware variant, sliding-window UCB."""

from __future__ import annotations

import numpy as np

from policies._checks import check_finite_float
from policies.base import DEFAULT_MIN_SHARE, Policy, split_ties
from policies.drift import WindowedEvidence


class UCB1(Policy):
    """Serve the arm with the highest upper confidence bound (Auer et al., 2002).

    Parameters
    ----------
    n_arms : int
        Number of arms.
    alpha : float, default 1.0
        Exploration constant: the index is ``mean_k + alpha · sqrt(2 ln n / n_k)`` with
        ``n`` the number of observations the rule uses and ``n_k`` those of arm ``k``.
        ``alpha = 1`` is UCB1 for rewards in [0, 1] (and mabwiser's default); for other
        reward ranges scale it by the range.
    seed : int or None, default None
        Unused randomness seed, accepted for a uniform contract.

    Notes
    -----
    Active arms without data have an infinite index and are served first, sharing the
    traffic evenly — including a newly added arm, which therefore receives all traffic
    until its first reward is learned. Ties in the index split traffic evenly, so the
    allocation is exact.
    """

    kind = "ucb1"

    def __init__(
        self, n_arms: int, *, alpha: float = 1.0, min_share: float = DEFAULT_MIN_SHARE, seed: int | None = None
    ) -> None:
        super().__init__(n_arms, min_share=min_share, seed=seed)
        self.alpha = check_finite_float("alpha", alpha, low=0.0)

    def upper_bounds(self) -> np.ndarray:
        """The UCB index of every arm (``+inf`` for an arm without data)."""
        counts, sums, _ = self.evidence()
        total = counts.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = self.alpha * np.sqrt(2.0 * np.log(max(total, 1.0)) / counts)
            index = sums / counts + bonus
        return np.where(counts > 0, index, np.inf)

    def _allocation_over_active(self) -> np.ndarray:
        return split_ties(self.upper_bounds(), self.active_)


class SlidingWindowUCB(WindowedEvidence, UCB1):
    """UCB1 computed over the last ``window`` observations only (Garivier & Moulines, 2011).

    Parameters
    ----------
    n_arms : int
        Number of arms.
    alpha : float, default 1.0
        Exploration constant, as in :class:`UCB1`; ``n`` is the window's length.
    window : int, default 1000
        Number of most recent observations (over all arms) the rule uses — the project's
        choice; pick roughly the number of rewards over which the environment stays
        stable. An arm with no observation inside the window counts as untried.
    seed : int or None, default None
        Unused randomness seed, accepted for a uniform contract.
    """

    kind = "sw_ucb"

    def __init__(
        self,
        n_arms: int,
        *,
        alpha: float = 1.0,
        window: int = 1000,
        min_share: float = DEFAULT_MIN_SHARE,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_arms, alpha=alpha, min_share=min_share, seed=seed)
        self._init_window(window)
