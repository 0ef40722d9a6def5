"""Evidence that forgets: the shared machinery of the drift-aware variants.

A stationary strategy decides from :meth:`policies.base.Policy.evidence`, the per-arm
(count, sum, sum of squares) of everything observed. A drift-aware variant is the same
strategy with a different ``evidence()``: these mixins supply it, so the decision rules
are inherited, never copied (``class DiscountedThompson(DiscountedEvidence, Thompson)``).
"""

from __future__ import annotations

import math

import numpy as np

from policies._checks import check_finite_float, check_int
from policies.base import Policy

#: Weights inside a rescaling epoch grow up to this factor before the sums are rescaled.
_MAX_EPOCH_GROWTH = 2.0**30
_MAX_EPOCH = 4096


class DiscountedEvidence(Policy):
    """Exponentially discounted evidence: an observation ``t`` steps old weighs ``γ^t``.

    Every new reward (on any arm) ages every arm's evidence by one step, as in
    discounted Thompson sampling (Raj & Kalyani, 2017). The prior is not discounted, so
    an arm that has not been observed for long returns to its prior.

    How it stays exact: the discounted sums are kept relative to the start ``e`` of the
    current *epoch* of ``E`` observations, ``S = Σ γ^(e - i) · x_i``, so a new reward
    ``i`` is added with weight ``γ^-(i - e)`` from a fixed table and nothing else
    changes; at each epoch end the sums are multiplied by ``γ^E`` once. Epoch boundaries
    are global observation counts, so any batching performs the same floating-point
    operations in the same order as one-by-one updates. ``E`` is chosen so that weights
    stay below 2^30 (and at most 4096).
    """

    extra_state = {
        "discounted_counts_": "arm_float",
        "discounted_sums_": "arm_float",
        "discounted_sumsq_": "arm_float",
    }
    discounted_counts_: np.ndarray
    discounted_sums_: np.ndarray
    discounted_sumsq_: np.ndarray

    def _init_discount(self, gamma: float) -> None:
        self.gamma = check_finite_float("gamma", gamma, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        self._epoch = int(min(_MAX_EPOCH, max(1, math.floor(math.log(_MAX_EPOCH_GROWTH) / -math.log(self.gamma)))))
        self._weights = np.power(self.gamma, -np.arange(self._epoch, dtype=np.float64))
        self._epoch_decay = self.gamma**self._epoch

    def _breakpoints(self, start: int, size: int) -> list[int]:
        first = (start // self._epoch + 1) * self._epoch
        return [n - start for n in range(first, start + size + 1, self._epoch)]

    def _on_breakpoint(self, n_observations: int) -> None:
        self.discounted_counts_ *= self._epoch_decay
        self.discounted_sums_ *= self._epoch_decay
        self.discounted_sumsq_ *= self._epoch_decay

    def _update_extra(self, arms: np.ndarray, rewards: np.ndarray, start: int) -> None:
        # A segment never crosses an epoch boundary (see _breakpoints).
        offset = start % self._epoch
        weights = self._weights[offset : offset + arms.size]
        np.add.at(self.discounted_counts_, arms, weights)
        np.add.at(self.discounted_sums_, arms, weights * rewards)
        np.add.at(self.discounted_sumsq_, arms, weights * rewards * rewards)

    def evidence(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Discounted (count, sum, sum of squares), the newest observation weighing 1."""
        n = self.n_observations
        if n == 0:
            return self.discounted_counts_, self.discounted_sums_, self.discounted_sumsq_
        # Sums are relative to the current epoch start e = n - (n % E), so the newest
        # observation n - 1 has weight γ^(e - n + 1) inside them; scale it back to 1.
        scale = self.gamma ** ((n - 1) % self._epoch)
        if n % self._epoch == 0:
            # The epoch just ended and was rescaled: the newest observation has weight γ.
            scale = 1.0 / self.gamma
        return (
            self.discounted_counts_ * scale,
            self.discounted_sums_ * scale,
            self.discounted_sumsq_ * scale,
        )


class WindowedEvidence(Policy):
    """Evidence from the last ``window`` observations only (sliding window).

    The window's arms and rewards are part of the saved state; statistics are recomputed
    from them in window order, so they depend only on the window's contents, never on
    how the updates were batched.
    """

    extra_state = {"window_arms_": "int_list", "window_rewards_": "float_list"}
    window_arms_: np.ndarray
    window_rewards_: np.ndarray

    def _init_window(self, window: int) -> None:
        self.window = check_int("window", window, minimum=1)

    def _update_extra(self, arms: np.ndarray, rewards: np.ndarray, start: int) -> None:
        self.window_arms_ = np.concatenate([self.window_arms_, arms])[-self.window :]
        self.window_rewards_ = np.concatenate([self.window_rewards_, rewards])[-self.window :]

    def evidence(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count, sum, sum of squares) per arm over the window."""
        counts = np.bincount(self.window_arms_, minlength=self.n_arms).astype(np.float64)
        sums = np.zeros(self.n_arms)
        sumsq = np.zeros(self.n_arms)
        np.add.at(sums, self.window_arms_, self.window_rewards_)
        np.add.at(sumsq, self.window_arms_, self.window_rewards_ * self.window_rewards_)
        return counts, sums, sumsq

    def _check_loaded_state(self) -> None:
        if self.window_arms_.size != self.window_rewards_.size:
            raise ValueError("window_rewards: must have as many entries as window_arms")
        if self.window_arms_.size > self.window:
            raise ValueError(f"window_arms: holds more than window={self.window} entries")
        if self.window_arms_.size and self.window_arms_.max() >= self.n_arms:
            raise ValueError(f"window_arms: every index must be below n_arms={self.n_arms}")
        super()._check_loaded_state()
